# The teacher's pages: the catalog of modules and a lesson's page.
# Sizes ({ $size }) arrive written out already ("1.4 MB").

## The catalog

catalog-title = Lessons
catalog-description = Lessons for teachers, with what each costs in data
catalog-empty = Nothing is published yet.
catalog-lessons = { $count ->
    [one] { $count } lesson
   *[other] { $count } lessons
}
catalog-course-page = Course page
# Per choice, what the whole module costs.
catalog-data = Data: { $costs }
# A lesson in the list: its length, and the smallest choice's size.
catalog-from = from { $size }

## A lesson

lesson-all-modules = All modules
lesson-heading = Lesson:
lesson-cannot-play = This browser cannot play the video: download it below.
# What plays, and what it costs, before anything plays.
lesson-now-chosen = { $choice } ({ $detail }): { $size } for the whole lesson
lesson-now-auto = Auto: { $choice } for your connection, { $size }
lesson-now-auto-later = Auto: chosen for your connection when you press play, at most { $size }
lesson-costs = Data for the whole lesson: { $costs }
lesson-download-heading = Download to watch offline

## The quality picker

picker-legend = Quality
picker-auto = Auto
picker-auto-detail = picks by your connection
picker-submit = Use this quality
choice-audio = Audio only
choice-slides = Slides
choice-2g = Data saver
choice-3g = Standard
choice-4g = Better
detail-sound-only = sound only
detail-slides = pictures when the slide changes

## A course page as the pipeline rewrites it

# After a video in an author's page: a link to its lesson page.
course-lesson-link = Lesson page: choose the quality, from { $size }
