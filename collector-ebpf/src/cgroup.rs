//! Container ids from cgroup paths (docker, containerd, cri-o, systemd slices) and Kubernetes
//! pod ids from the kubelet's layout.

/// What a cgroup path says about the container it belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    /// The container id (64 hex digits for docker, containerd and cri-o).
    pub container_id: Option<String>,
    /// The Kubernetes pod UID, when the path follows the kubelet's layout.
    pub pod_uid: Option<String>,
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses a cgroup path (the part after `0::` in `/proc/<pid>/cgroup`).
///
/// Recognized, last matching component wins:
/// - docker: `/docker/<id>`, `/system.slice/docker-<id>.scope`;
/// - containerd: `/system.slice/containerd-<id>.scope`, `…/cri-containerd-<id>.scope`,
///   plain `/<namespace>/<id>` components;
/// - cri-o: `…/crio-<id>.scope`, `…/crio-conmon-<id>.scope` (not the container itself);
/// - podman/libpod: `libpod-<id>.scope`;
/// - Kubernetes: `kubepods[-burstable|-besteffort]-pod<uid>.slice` (systemd driver, `_` for
///   `-` in the uid) or `/kubepods/<qos>/pod<uid>/<id>` (cgroupfs driver).
pub fn parse_cgroup_path(path: &str) -> ContainerInfo {
    let mut info = ContainerInfo::default();
    for comp in path.split('/') {
        let base = comp.strip_suffix(".scope").unwrap_or(comp);
        let base = base.strip_suffix(".slice").unwrap_or(base);
        if let Some(uid) = pod_uid(base) {
            info.pod_uid = Some(uid);
            continue;
        }
        if base.starts_with("crio-conmon-") {
            continue;
        }
        let id = match base.rsplit_once('-') {
            Some((_, id)) if is_container_id(id) => id,
            _ if is_container_id(base) => base,
            _ => continue,
        };
        info.container_id = Some(id.to_owned());
    }
    info
}

fn pod_uid(comp: &str) -> Option<String> {
    // systemd driver: kubepods-burstable-pod1234_5678.slice; cgroupfs: pod1234-5678.
    let idx = comp.rfind("pod")?;
    if !(idx == 0 || comp[..idx].starts_with("kubepods")) {
        return None;
    }
    let uid = &comp[idx + 3..];
    let ok = uid.len() >= 32
        && uid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_');
    ok.then(|| uid.replace('_', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4a1b2c3d4e5f60718293a4b5c6d7e8f0112233445566778899aabbccddeeff";

    fn id(path: &str) -> Option<String> {
        parse_cgroup_path(path).container_id
    }

    #[test]
    fn docker() {
        assert_eq!(id(&format!("/docker/{ID}")).as_deref(), Some(ID));
        assert_eq!(
            id(&format!("/system.slice/docker-{ID}.scope")).as_deref(),
            Some(ID)
        );
    }

    #[test]
    fn containerd_crio_podman() {
        assert_eq!(
            id(&format!("/system.slice/containerd-{ID}.scope")).as_deref(),
            Some(ID)
        );
        assert_eq!(id(&format!("/default/{ID}")).as_deref(), Some(ID));
        assert_eq!(
            id(&format!("/machine.slice/libpod-{ID}.scope/container")).as_deref(),
            Some(ID)
        );
        assert_eq!(id(&format!("/crio-conmon-{ID}.scope")), None);
    }

    #[test]
    fn kubernetes_systemd_and_cgroupfs_drivers() {
        let p = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b2c3d_4e5f_6789_abcd_ef0123456789.slice/cri-containerd-{ID}.scope"
        );
        let info = parse_cgroup_path(&p);
        assert_eq!(info.container_id.as_deref(), Some(ID));
        assert_eq!(
            info.pod_uid.as_deref(),
            Some("0a1b2c3d-4e5f-6789-abcd-ef0123456789")
        );
        let p = format!("/kubepods/besteffort/pod0a1b2c3d-4e5f-6789-abcd-ef0123456789/crio-{ID}");
        let info = parse_cgroup_path(&p);
        assert_eq!(info.container_id.as_deref(), Some(ID));
        assert_eq!(
            info.pod_uid.as_deref(),
            Some("0a1b2c3d-4e5f-6789-abcd-ef0123456789")
        );
    }

    #[test]
    fn host_paths_have_no_container() {
        for p in [
            "/",
            "/user.slice/user-0.slice/session-1.scope",
            "/system.slice/sshd.service",
            "/init.scope",
        ] {
            assert_eq!(parse_cgroup_path(p), ContainerInfo::default(), "{p}");
        }
    }
}
