//! The data model: profile types, series, samples' stacks and their symbols.

mod id;
mod labels;
mod profile_type;
mod symbols;

pub use id::{FunctionId, LocationId, MappingId, SeriesId, StackId};
pub(crate) use id::{IdMap, IdSet};
pub use labels::{
    Label, Labels, is_legacy_label_name, is_valid_label_name, write_escaped, write_label_name,
};
pub use profile_type::ProfileType;
pub use symbols::{Function, Line, Location, Mapping, stack_id};
