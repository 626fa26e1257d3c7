//! Debug info front doors: Parca's `parca.debuginfo.v1alpha1.DebuginfoService` (uploads,
//! [`grpc`]) and `GET /api/v1/debuginfo/status` (what the symbolizer found per build id,
//! [`http`]).

pub(crate) mod grpc;
pub(crate) mod http;
