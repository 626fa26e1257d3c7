//! Arrow schemas of the Parquet files in a block.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};

fn dict_utf8() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

static SAMPLES: LazyLock<SchemaRef> = LazyLock::new(|| {
    // The scan output's columns, after the profile type.
    let mut fields = vec![Arc::new(Field::new("profile_type", dict_utf8(), false))];
    fields.extend(crate::scan::scan_schema().fields().iter().cloned());
    Arc::new(Schema::new(fields))
});

/// `samples.parquet`: one row per sample, sorted by (profile_type, series_id, timestamp_ns).
pub(crate) fn samples_schema() -> SchemaRef {
    SAMPLES.clone()
}

pub(crate) fn stacks_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("stack_id", DataType::UInt64, false),
        Field::new(
            "location_ids",
            DataType::List(Arc::new(Field::new("item", DataType::UInt64, false))),
            false,
        ),
    ]))
}

pub(crate) fn line_fields() -> Fields {
    vec![
        Field::new("function_id", DataType::UInt64, false),
        Field::new("line", DataType::Int64, false),
    ]
    .into()
}

pub(crate) fn locations_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("location_id", DataType::UInt64, false),
        Field::new("mapping_id", DataType::UInt64, false),
        Field::new("address", DataType::UInt64, false),
        Field::new(
            "lines",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(line_fields()),
                false,
            ))),
            false,
        ),
    ]))
}

pub(crate) fn functions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("function_id", DataType::UInt64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("system_name", DataType::Utf8, false),
        Field::new("filename", DataType::Utf8, false),
        Field::new("start_line", DataType::Int64, false),
    ]))
}

pub(crate) fn mappings_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("mapping_id", DataType::UInt64, false),
        Field::new("build_id", DataType::Utf8, false),
        Field::new("filename", DataType::Utf8, false),
        Field::new("memory_start", DataType::UInt64, false),
        Field::new("memory_limit", DataType::UInt64, false),
        Field::new("file_offset", DataType::UInt64, false),
    ]))
}
