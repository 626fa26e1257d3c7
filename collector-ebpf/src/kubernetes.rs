//! [`KubernetesResolver`]: the Kubernetes names of a container — namespace, pod, container —
//! read from the container runtime's on-disk state, keyed by container id, without the
//! Kubernetes API.
//!
//! Where the names are (the first file that yields them wins; the ids are unique across
//! runtimes):
//! - containerd (CRI): `<run_root>/containerd/io.containerd.runtime.v2.task/k8s.io/<id>/config.json`,
//!   the OCI bundle spec, with annotations `io.kubernetes.cri.sandbox-namespace`,
//!   `io.kubernetes.cri.sandbox-name` and `io.kubernetes.cri.container-name`;
//! - CRI-O: `<run_root>/containers/storage/overlay-containers/<id>/userdata/config.json`, the
//!   OCI bundle spec, into whose annotations CRI-O copies the kubelet's container labels
//!   `io.kubernetes.pod.namespace`, `io.kubernetes.pod.name`, `io.kubernetes.container.name`
//!   (also kept, JSON-encoded, under `io.kubernetes.cri-o.Labels`, read when the plain keys are
//!   absent);
//! - Docker with cri-dockerd: `<docker_root>/containers/<id>/config.v2.json`, whose
//!   `Config.Labels` hold the same three kubelet labels.
//!
//! A pod's sandbox ("pause") container has a namespace and a pod but no container name: it is
//! marked by `io.kubernetes.cri.container-type` or `io.kubernetes.cri-o.ContainerType` =
//! `sandbox`, or by cri-dockerd's `io.kubernetes.docker.type` = `podsandbox` (whose container
//! name label, `POD`, is left out).
//!
//! A missing, unreadable, oversized or malformed file means no names; nothing here panics on
//! its content.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::cgroup::ContainerInfo;

/// Entries the cache holds at most; past it an arbitrary entry makes room. The sampler also
/// drops the entries of containers it no longer tracks a process of ([`KubernetesResolver::retain`]).
pub const MAX_CACHED_CONTAINERS: usize = 4096;

/// Bigger runtime state files are not read (an OCI spec is a few KiB; a CRI-O spec carries the
/// pod's annotations, at most 256 KiB in Kubernetes).
const MAX_CONFIG_BYTES: u64 = 4 << 20;

// containerd's CRI plugin (OCI spec annotations).
const CRI_SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
const CRI_SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
const CRI_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
// The kubelet's container labels (CRI-O spec annotations, Docker labels with cri-dockerd).
const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const POD_NAME: &str = "io.kubernetes.pod.name";
const CONTAINER_NAME: &str = "io.kubernetes.container.name";
// CRI-O.
const CRIO_CONTAINER_TYPE: &str = "io.kubernetes.cri-o.ContainerType";
const CRIO_LABELS: &str = "io.kubernetes.cri-o.Labels";
// cri-dockerd.
const DOCKER_TYPE: &str = "io.kubernetes.docker.type";

/// The Kubernetes names of one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubernetesNames {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container's name in the pod spec; `None` for the pod's sandbox (pause) container.
    pub container: Option<String>,
}

/// Resolves container ids to [`KubernetesNames`] from the runtimes' state directories, caching
/// each answer (names or none) per container id.
#[derive(Debug)]
pub struct KubernetesResolver {
    run_root: PathBuf,
    docker_root: PathBuf,
    cache: FxHashMap<String, Option<Arc<KubernetesNames>>>,
}

impl KubernetesResolver {
    /// A resolver reading containerd's and CRI-O's state under `run_root` (normally `/run`) and
    /// Docker's under `docker_root` (normally `/var/lib/docker`).
    pub fn new(run_root: impl Into<PathBuf>, docker_root: impl Into<PathBuf>) -> Self {
        KubernetesResolver {
            run_root: run_root.into(),
            docker_root: docker_root.into(),
            cache: FxHashMap::default(),
        }
    }

    /// The names of the container a cgroup path pointed at, read once per container id and
    /// then served from the cache. `None` for processes outside a container and for
    /// containers that are not part of a pod.
    pub fn resolve(&mut self, container: &ContainerInfo) -> Option<Arc<KubernetesNames>> {
        let id = container.container_id.as_deref()?;
        if let Some(cached) = self.cache.get(id) {
            return cached.clone();
        }
        let names = self.read(id).map(Arc::new);
        if self.cache.len() >= MAX_CACHED_CONTAINERS
            && let Some(victim) = self.cache.keys().next().cloned()
        {
            self.cache.remove(&victim);
        }
        self.cache.insert(id.to_owned(), names.clone());
        names
    }

    /// Reads the names of container `id` from disk, bypassing the cache.
    pub fn read(&self, id: &str) -> Option<KubernetesNames> {
        // Container ids come from cgroup paths (64 hex digits); anything that could leave the
        // runtime's directory is refused.
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        let containerd = self
            .run_root
            .join("containerd/io.containerd.runtime.v2.task/k8s.io")
            .join(id)
            .join("config.json");
        let crio = self
            .run_root
            .join("containers/storage/overlay-containers")
            .join(id)
            .join("userdata/config.json");
        let docker = self
            .docker_root
            .join("containers")
            .join(id)
            .join("config.v2.json");
        oci_annotations(&containerd)
            .as_ref()
            .and_then(names_from)
            .or_else(|| oci_annotations(&crio).as_ref().and_then(names_from))
            .or_else(|| docker_labels(&docker).as_ref().and_then(names_from))
    }

    /// Keeps only the cache entries whose container id `keep` accepts (the sampler passes the
    /// ids of the containers it still tracks a process of).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.cache.retain(|id, _| keep(id));
    }

    /// Drops the cache entry of container `id`.
    pub fn forget(&mut self, id: &str) {
        self.cache.remove(id);
    }

    /// Container ids cached (with or without names).
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

/// The part of an OCI runtime spec (`config.json`) read here.
#[derive(Deserialize)]
struct OciSpec {
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
}

/// The part of Docker's `config.v2.json` read here.
#[derive(Deserialize)]
struct DockerContainer {
    #[serde(rename = "Config", default)]
    config: Option<DockerConfig>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(rename = "Labels", default)]
    labels: Option<HashMap<String, String>>,
}

/// The file's bytes, `None` when it is missing, unreadable or larger than [`MAX_CONFIG_BYTES`].
fn read_capped(path: &Path) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut buf).ok()?;
    (buf.len() as u64 <= MAX_CONFIG_BYTES).then_some(buf)
}

fn oci_annotations(path: &Path) -> Option<HashMap<String, String>> {
    let spec: OciSpec = serde_json::from_slice(&read_capped(path)?).ok()?;
    spec.annotations
}

fn docker_labels(path: &Path) -> Option<HashMap<String, String>> {
    let container: DockerContainer = serde_json::from_slice(&read_capped(path)?).ok()?;
    container.config?.labels
}

/// The names in a runtime's annotations or labels: a namespace and a pod are required.
fn names_from(map: &HashMap<String, String>) -> Option<KubernetesNames> {
    // CRI-O also keeps the kubelet's labels as one JSON-encoded annotation.
    let crio_labels: Option<HashMap<String, String>> = map
        .get(CRIO_LABELS)
        .and_then(|s| serde_json::from_str(s).ok());
    let get = |keys: &[&str]| -> Option<String> {
        [Some(map), crio_labels.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|m| {
                keys.iter()
                    .find_map(|k| m.get(*k).filter(|v| !v.is_empty()))
            })
            .cloned()
    };
    let namespace = get(&[CRI_SANDBOX_NAMESPACE, POD_NAMESPACE])?;
    let pod = get(&[CRI_SANDBOX_NAME, POD_NAME])?;
    let sandbox = get(&[CRI_CONTAINER_TYPE, CRIO_CONTAINER_TYPE]).as_deref() == Some("sandbox")
        || get(&[DOCKER_TYPE]).as_deref() == Some("podsandbox");
    let container = if sandbox {
        None
    } else {
        get(&[CRI_CONTAINER_NAME, CONTAINER_NAME])
    };
    Some(KubernetesNames {
        namespace,
        pod,
        container,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4a1b2c3d4e5f60718293a4b5c6d7e8f0112233445566778899aabbccddeeff";
    const ID2: &str = "0000000000000000000000000000000000000000000000000000000000000002";

    struct Fixture {
        _dir: tempfile::TempDir,
        run: PathBuf,
        docker: PathBuf,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let run = dir.path().join("run");
            let docker = dir.path().join("var/lib/docker");
            Fixture {
                _dir: dir,
                run,
                docker,
            }
        }

        fn resolver(&self) -> KubernetesResolver {
            KubernetesResolver::new(&self.run, &self.docker)
        }

        fn write(&self, path: PathBuf, text: &str) {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }

        fn containerd(&self, id: &str, text: &str) {
            self.write(
                self.run
                    .join("containerd/io.containerd.runtime.v2.task/k8s.io")
                    .join(id)
                    .join("config.json"),
                text,
            );
        }

        fn crio(&self, id: &str, text: &str) {
            self.write(
                self.run
                    .join("containers/storage/overlay-containers")
                    .join(id)
                    .join("userdata/config.json"),
                text,
            );
        }

        fn docker(&self, id: &str, text: &str) {
            self.write(
                self.docker
                    .join("containers")
                    .join(id)
                    .join("config.v2.json"),
                text,
            );
        }
    }

    fn names(namespace: &str, pod: &str, container: Option<&str>) -> KubernetesNames {
        KubernetesNames {
            namespace: namespace.into(),
            pod: pod.into(),
            container: container.map(Into::into),
        }
    }

    fn info(id: &str) -> ContainerInfo {
        ContainerInfo {
            container_id: Some(id.into()),
            pod_uid: None,
        }
    }

    #[test]
    fn containerd_container_and_sandbox() {
        let f = Fixture::new();
        f.containerd(
            ID,
            r#"{"ociVersion":"1.1.0","process":{"args":["/app"]},"annotations":{
                "io.kubernetes.cri.container-type":"container",
                "io.kubernetes.cri.container-name":"app",
                "io.kubernetes.cri.sandbox-id":"abc",
                "io.kubernetes.cri.sandbox-name":"web-7d9f8-x2x4q",
                "io.kubernetes.cri.sandbox-namespace":"shop",
                "io.kubernetes.cri.sandbox-uid":"0a1b2c3d-4e5f-6789-abcd-ef0123456789"}}"#,
        );
        f.containerd(
            ID2,
            r#"{"annotations":{
                "io.kubernetes.cri.container-type":"sandbox",
                "io.kubernetes.cri.sandbox-name":"web-7d9f8-x2x4q",
                "io.kubernetes.cri.sandbox-namespace":"shop"}}"#,
        );
        let r = f.resolver();
        assert_eq!(
            r.read(ID),
            Some(names("shop", "web-7d9f8-x2x4q", Some("app")))
        );
        assert_eq!(r.read(ID2), Some(names("shop", "web-7d9f8-x2x4q", None)));
    }

    #[test]
    fn crio_container_sandbox_and_labels_annotation() {
        let f = Fixture::new();
        f.crio(
            ID,
            r#"{"annotations":{
                "io.kubernetes.cri-o.ContainerType":"container",
                "io.kubernetes.pod.namespace":"kube-system",
                "io.kubernetes.pod.name":"coredns-5644d7b6d9-c5tbq",
                "io.kubernetes.container.name":"coredns"}}"#,
        );
        // A sandbox whose names are only in the JSON-encoded labels annotation.
        f.crio(
            ID2,
            r#"{"annotations":{
                "io.kubernetes.cri-o.ContainerType":"sandbox",
                "io.kubernetes.cri-o.Labels":"{\"io.kubernetes.pod.namespace\":\"kube-system\",\"io.kubernetes.pod.name\":\"coredns-5644d7b6d9-c5tbq\",\"io.kubernetes.container.name\":\"POD\"}"}}"#,
        );
        let r = f.resolver();
        assert_eq!(
            r.read(ID),
            Some(names(
                "kube-system",
                "coredns-5644d7b6d9-c5tbq",
                Some("coredns")
            ))
        );
        assert_eq!(
            r.read(ID2),
            Some(names("kube-system", "coredns-5644d7b6d9-c5tbq", None))
        );
    }

    #[test]
    fn docker_with_cri_dockerd_and_plain_docker() {
        let f = Fixture::new();
        f.docker(
            ID,
            r#"{"ID":"x","State":{"Running":true},"Config":{"Hostname":"h","Labels":{
                "io.kubernetes.docker.type":"container",
                "io.kubernetes.pod.namespace":"default",
                "io.kubernetes.pod.name":"nginx",
                "io.kubernetes.container.name":"nginx"}}}"#,
        );
        // cri-dockerd's sandbox carries the container name `POD`, which is left out.
        f.docker(
            ID2,
            r#"{"Config":{"Labels":{
                "io.kubernetes.docker.type":"podsandbox",
                "io.kubernetes.pod.namespace":"default",
                "io.kubernetes.pod.name":"nginx",
                "io.kubernetes.container.name":"POD"}}}"#,
        );
        let r = f.resolver();
        assert_eq!(r.read(ID), Some(names("default", "nginx", Some("nginx"))));
        assert_eq!(r.read(ID2), Some(names("default", "nginx", None)));

        // A container started by `docker run`: labels null or without Kubernetes keys.
        let f = Fixture::new();
        f.docker(ID, r#"{"Config":{"Labels":null}}"#);
        f.docker(ID2, r#"{"Config":{"Labels":{"maintainer":"me"}}}"#);
        let r = f.resolver();
        assert_eq!(r.read(ID), None);
        assert_eq!(r.read(ID2), None);
    }

    #[test]
    fn malformed_missing_and_incomplete_state_gives_no_names() {
        let f = Fixture::new();
        for (i, text) in [
            "",
            "{",
            "not json",
            "[]",
            "null",
            r#"{"annotations":"nope"}"#,
            r#"{"annotations":{"io.kubernetes.cri.sandbox-namespace":7}}"#,
            // A namespace without a pod, and empty values.
            r#"{"annotations":{"io.kubernetes.cri.sandbox-namespace":"shop"}}"#,
            r#"{"annotations":{"io.kubernetes.pod.namespace":"","io.kubernetes.pod.name":"p"}}"#,
            // Labels annotation that is not a JSON object of strings.
            r#"{"annotations":{"io.kubernetes.cri-o.Labels":"{\"io.kubernetes.pod.namespace\":"}}"#,
        ]
        .iter()
        .enumerate()
        {
            let id = format!("{i:064x}");
            f.containerd(&id, text);
            f.crio(&id, text);
            f.docker(&id, text);
            assert_eq!(f.resolver().read(&id), None, "{text}");
        }
        f.docker(
            ID,
            r#"{"Config":{"Labels":{"io.kubernetes.pod.name":["x"]}}}"#,
        );
        assert_eq!(f.resolver().read(ID), None);
        // Nothing on disk at all, and a root that does not exist.
        assert_eq!(f.resolver().read(ID2), None);
        let r = KubernetesResolver::new("/nonexistent/run", "/nonexistent/docker");
        assert_eq!(r.read(ID), None);
        // Ids that could leave the runtime's directory.
        for id in ["", "..", "../../etc", "a/b"] {
            assert_eq!(f.resolver().read(id), None, "{id}");
        }
    }

    #[test]
    fn oversized_state_file_is_not_read() {
        let f = Fixture::new();
        let pad = "x".repeat(MAX_CONFIG_BYTES as usize);
        f.containerd(
            ID,
            &format!(
                r#"{{"pad":"{pad}","annotations":{{"io.kubernetes.cri.sandbox-namespace":"a","io.kubernetes.cri.sandbox-name":"b"}}}}"#
            ),
        );
        assert_eq!(f.resolver().read(ID), None);
    }

    #[test]
    fn resolve_caches_per_container_id_and_forgets() {
        let f = Fixture::new();
        let text = r#"{"annotations":{"io.kubernetes.cri.sandbox-namespace":"a","io.kubernetes.cri.sandbox-name":"b","io.kubernetes.cri.container-name":"c"}}"#;
        f.containerd(ID, text);
        let mut r = f.resolver();
        // Only containers are looked up.
        assert_eq!(r.resolve(&ContainerInfo::default()), None);
        assert!(r.is_empty());
        let first = r.resolve(&info(ID)).unwrap();
        assert_eq!(*first, names("a", "b", Some("c")));
        // A container without names is cached too (as none).
        assert_eq!(r.resolve(&info(ID2)), None);
        assert_eq!(r.len(), 2);
        // Served from the cache while the entry lives, even after the file went.
        std::fs::remove_dir_all(&f.run).unwrap();
        assert!(Arc::ptr_eq(&r.resolve(&info(ID)).unwrap(), &first));
        // Dropped entries are read again.
        r.retain(|id| id == ID2);
        assert_eq!(r.len(), 1);
        assert_eq!(r.resolve(&info(ID)), None);
        r.forget(ID);
        r.forget(ID2);
        assert!(r.is_empty());
    }

    #[test]
    fn cache_is_bounded() {
        let f = Fixture::new();
        let mut r = f.resolver();
        for i in 0..MAX_CACHED_CONTAINERS + 10 {
            r.resolve(&info(&format!("{i:064x}")));
        }
        assert_eq!(r.len(), MAX_CACHED_CONTAINERS);
    }
}
