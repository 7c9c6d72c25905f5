//! One store suite, run against every backend: memory://, file:// and a real
//! S3-compatible server (s3s-fs) started on loopback for the test.

use bytes::Bytes;
use lowband_catalog::manifest::{Asset, AssetKind, Manifest, Variant, VariantKind};
use lowband_catalog::testing::{self, Process};
use lowband_catalog::{ModuleId, ObjectKey, Store, StoreError};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

fn manifest(id: &str, key: ObjectKey, bytes: u64) -> Manifest {
    let page = Asset::builder("index.html", AssetKind::Page)
        .source(bytes, "text/html")
        .source_hash(key.hash())
        .variant(Variant::new(
            "identity",
            VariantKind::Page,
            "slow-2g",
            key,
            bytes,
            "text/html",
        ));
    Manifest::builder(id)
        .title(format!("Module {id}"))
        .language("km")
        .published_at(1)
        .asset(page)
        .build()
}

async fn suite(store: &Store) {
    // Content-addressed puts store once.
    let page = Bytes::from_static("<p lang=\"km\">សួស្តី</p>".as_bytes());
    let (key, uploaded) = store.put_object(page.clone(), "html").await.unwrap();
    assert!(uploaded);
    assert_eq!(key, ObjectKey::for_bytes(&page, "html"));
    let (again, uploaded) = store.put_object(page.clone(), "html").await.unwrap();
    assert_eq!(
        (again.clone(), uploaded),
        (key.clone(), false),
        "second put of the same bytes uploads nothing"
    );
    assert!(store.contains(&key).await.unwrap());
    assert_eq!(
        store.get_bytes(&key.to_string()).await.unwrap().unwrap(),
        page
    );
    assert!(!store
        .contains(&ObjectKey::for_bytes(b"absent", "bin"))
        .await
        .unwrap());
    assert!(store
        .get_bytes("modules/none/manifest.json")
        .await
        .unwrap()
        .is_none());

    // A file larger than the multipart threshold goes up in parts, intact.
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..9 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let big_path = dir.path().join("big.mp4");
    std::fs::write(&big_path, &big).unwrap();
    let big_key = ObjectKey::for_bytes(&big, "mp4");
    assert!(store.put_file(&big_key, &big_path).await.unwrap());
    assert!(!store.put_file(&big_key, &big_path).await.unwrap());
    let path = Path::from(big_key.to_string());
    assert_eq!(
        store.inner().head(&path).await.unwrap().size,
        big.len() as u64
    );
    let middle = store
        .inner()
        .get_range(&path, 5_000_000..5_000_100)
        .await
        .unwrap();
    assert_eq!(&middle[..], &big[5_000_000..5_000_100]);

    // Manifests: absent, published, listed, replaced.
    let id = ModuleId::parse("m-two").unwrap();
    assert!(store.manifest(&id).await.unwrap().is_none());
    assert!(store.index().await.unwrap().modules.is_empty());
    let m2 = manifest("m-two", key.clone(), page.len() as u64);
    store.publish(&m2).await.unwrap();
    assert_eq!(store.manifest(&id).await.unwrap().unwrap(), m2);
    let m1 = manifest("m-one", key.clone(), page.len() as u64);
    store.publish(&m1).await.unwrap();
    let mut m2b = m2.clone();
    m2b.module.title = "Renamed".into();
    store.publish(&m2b).await.unwrap();
    let index = store.index().await.unwrap();
    let listed: Vec<_> = index
        .modules
        .iter()
        .map(|m| (m.id.as_str(), m.title.as_str()))
        .collect();
    assert_eq!(listed, [("m-one", "Module m-one"), ("m-two", "Renamed")]);

    // A damaged manifest is reported as such, naming its key.
    store
        .inner()
        .put(
            &Path::from("modules/m-bad/manifest.json"),
            PutPayload::from_static(b"{\"schema\": 1, \"mod"),
        )
        .await
        .unwrap();
    let err = store
        .manifest(&ModuleId::parse("m-bad").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Manifest(_)), "{err}");
    assert!(
        err.to_string().contains("modules/m-bad/manifest.json"),
        "{err}"
    );
}

#[tokio::test]
async fn memory_store() {
    suite(&Store::open("memory://").unwrap()).await;
}

#[tokio::test]
async fn file_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("file://{}", dir.path().join("store").display())).unwrap();
    suite(&store).await;
    // Objects are plain files under the content-addressed layout.
    let any_object = walk(dir.path())
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/objects/"));
    assert!(any_object.is_some());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// An s3s-fs process serving one bucket from a directory of its own.
struct S3Server {
    _process: Process,
    endpoint: String,
    _root: tempfile::TempDir,
}

fn start_s3s(bucket: &str) -> Option<S3Server> {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join(bucket)).unwrap();
    let port = testing::free_port();
    let process = testing::start_s3s(root.path(), port, "the S3 store suite")?;
    Some(S3Server {
        _process: process,
        endpoint: format!("http://127.0.0.1:{port}"),
        _root: root,
    })
}

#[tokio::test]
async fn s3_store() {
    let Some(server) = start_s3s("lowband") else {
        return;
    };
    // This is the only test in this binary that reads AWS_* variables.
    std::env::set_var("AWS_ENDPOINT_URL", &server.endpoint);
    std::env::set_var("AWS_ACCESS_KEY_ID", testing::S3_ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", testing::S3_SECRET_KEY);
    std::env::set_var("AWS_REGION", "us-east-1");
    let store = Store::open("s3://lowband/national/origin").unwrap();
    suite(&store).await;

    // Wrong credentials are an error, not an empty store.
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "wrong");
    let denied = Store::open("s3://lowband/national/origin").unwrap();
    assert!(denied.index().await.is_err());
}
