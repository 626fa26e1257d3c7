//! Arrow Flight SQL (`arrow.flight.protocol.FlightService`, native gRPC on the server's one
//! port): Flight SQL clients (ADBC, the Flight SQL JDBC driver, DBeaver, …) run SQL against
//! the session of [`strata_query::QueryEngine::sql_session`]: the tables `samples`, `stacks`,
//! `locations`, `functions`, `mappings` and the table function
//! `merge('<selector>', <start>, <end>)`.
//!
//! Stateless: the ticket of a statement, and the handle of a prepared statement, is the SQL
//! itself, planned again on a fresh session by `DoGet`; nothing is kept between calls.
//! Read-only: DDL, DML and session statements (`SET`, transactions, …) are refused.
//!
//! Served:
//! - `Handshake` (no authentication);
//! - `GetFlightInfo` + `DoGet` of `CommandStatementQuery` (ADBC's `execute` without
//!   parameters), `CommandPreparedStatementQuery` (after the `CreatePreparedStatement` action;
//!   `ClosePreparedStatement` is accepted), `CommandGetSqlInfo` (what the ADBC driver asks when
//!   it connects), `CommandGetCatalogs`, `CommandGetDbSchemas`, `CommandGetTables`,
//!   `CommandGetTableTypes` (ADBC's `get_objects` / `get_table_schema`);
//! - everything else (updates, bound parameters, Substrait, transactions) is `UNIMPLEMENTED`.
//!
//! SQL that does not parse or plan is `INVALID_ARGUMENT` with DataFusion's message.

use std::pin::Pin;
use std::sync::{Arc, LazyLock};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{GetTablesBuilder, SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementQuery, ProstMessageExt, SqlInfo, SqlSupportedTransaction, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::prelude::{DataFrame, SQLOptions, SessionContext};
use futures::{Stream, TryStreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use crate::state::{App, RequestTenant};
use crate::tenants::TenantStore;

type DoGetStream = <FlightSql as FlightService>::DoGetStream;

/// The Flight SQL service over the app's query engine.
pub(crate) struct FlightSql(Arc<App>);

impl FlightSql {
    /// The gRPC service, ready for `Routes::add_service`.
    pub(crate) fn server(app: Arc<App>) -> FlightServiceServer<FlightSql> {
        FlightServiceServer::new(FlightSql(app))
    }

    /// The store of the request's tenant.
    fn store<T>(&self, request: &Request<T>) -> Arc<TenantStore> {
        self.0.store_of(request.extensions().get::<RequestTenant>())
    }

    async fn session(&self, store: &TenantStore) -> Result<SessionContext, Status> {
        store
            .query
            .sql_session()
            .await
            .map_err(|e| Status::internal(format!("opening the SQL session: {e}")))
    }

    /// Parses and plans `sql` (logical plan only: no data is read).
    async fn plan(&self, store: &TenantStore, sql: &str) -> Result<DataFrame, Status> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        self.session(store)
            .await?
            .sql_with_options(sql, options)
            .await
            .map_err(|e| Status::invalid_argument(e.strip_backtrace()))
    }

    /// A FlightInfo for `sql`: its result schema and one endpoint whose ticket is the SQL.
    async fn statement_info(
        &self,
        store: &TenantStore,
        sql: String,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let df = self.plan(store, &sql).await?;
        let schema = flight_schema(df.schema().as_arrow());
        let ticket = TicketStatementQuery {
            statement_handle: sql.into_bytes().into(),
        };
        info(&schema, ticket.as_any().encode_to_vec(), descriptor)
    }

    /// Runs `sql` and streams its batches.
    async fn run(&self, store: &TenantStore, sql: &str) -> Result<Response<DoGetStream>, Status> {
        let df = self.plan(store, sql).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.execute_stream().await.map_err(execution_status)?;
        // The stream's schema can differ from the logical one in nullability or metadata; the
        // client was promised the logical one.
        let same = batches.schema() == schema;
        let out = schema.clone();
        let batches = batches
            .map_err(|e| FlightError::Tonic(Box::new(execution_status(e))))
            .and_then(move |batch| {
                let out = out.clone();
                async move {
                    if same {
                        return Ok(batch);
                    }
                    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
                    RecordBatch::try_new_with_options(out, batch.columns().to_vec(), &options)
                        .map_err(FlightError::Arrow)
                }
            });
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(Box::pin(stream)))
    }

    /// Every table of the session: (catalog, schema, table, type, table schema), sorted.
    async fn tables(
        &self,
        store: &TenantStore,
    ) -> Result<Vec<(String, String, String, &'static str, SchemaRef)>, Status> {
        let ctx = self.session(store).await?;
        let mut out = Vec::new();
        for catalog_name in ctx.catalog_names() {
            let Some(catalog) = ctx.catalog(&catalog_name) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                for table_name in schema.table_names() {
                    let table = schema
                        .table(&table_name)
                        .await
                        .map_err(|e| Status::internal(e.strip_backtrace()))?;
                    if let Some(table) = table {
                        let kind = match table.table_type() {
                            TableType::Base => "TABLE",
                            TableType::View => "VIEW",
                            TableType::Temporary => "LOCAL TEMPORARY",
                        };
                        out.push((
                            catalog_name.clone(),
                            schema_name.clone(),
                            table_name,
                            kind,
                            table.schema(),
                        ));
                    }
                }
            }
        }
        out.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
        Ok(out)
    }
}

/// What `CommandGetSqlInfo` answers: who we are, and that we are read-only without
/// transactions or cancellation (the ADBC driver asks for these when it connects).
static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "Strata");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    // The Arrow format version (Schema.fbs).
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, true);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, false);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    b.build()
        .expect("the SQL info values have the types Flight SQL gives them")
});

/// A FlightInfo with `schema` and one endpoint (on this server) whose ticket is `ticket`.
fn info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("encoding the schema: {e}")))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// The schema as `DoGet` sends it: the encoder expands dictionary columns to their values.
fn flight_schema(schema: &Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Dictionary(_, values) => f.as_ref().clone().with_data_type(*values.clone()),
            _ => f.as_ref().clone(),
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// One batch, encoded.
fn one_batch(schema: SchemaRef, batch: Result<RecordBatch, FlightError>) -> Response<DoGetStream> {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async move { batch }))
        .map_err(Status::from);
    Response::new(Box::pin(stream))
}

/// The status for an error while running a planned query.
fn execution_status(e: DataFusionError) -> Status {
    let message = e.strip_backtrace();
    if crate::status::is_caller_error(&e) {
        return Status::invalid_argument(message);
    }
    match e.find_root() {
        DataFusionError::ResourcesExhausted(_) => Status::resource_exhausted(message),
        _ => Status::internal(message),
    }
}

fn utf8_handle(handle: &[u8]) -> Result<String, Status> {
    String::from_utf8(handle.to_vec())
        .map_err(|_| Status::invalid_argument("the statement handle is not UTF-8 SQL"))
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = FlightSql;

    async fn do_handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: Default::default(),
        };
        Ok(Response::new(Box::pin(futures::stream::once(async {
            Ok(reply)
        }))))
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let store = &self.store(&request);
        self.statement_info(store, query.query, request.into_inner())
            .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let store = &self.store(&request);
        let sql = utf8_handle(&cmd.prepared_statement_handle)?;
        self.statement_info(store, sql, request.into_inner()).await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let store = &self.store(&request);
        self.run(store, &utf8_handle(&ticket.statement_handle)?)
            .await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let store = &self.store(&request);
        self.run(store, &utf8_handle(&query.prepared_statement_handle)?)
            .await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let store = &self.store(&request);
        let df = self.plan(store, &query.query).await?;
        let schema = flight_schema(df.schema().as_arrow());
        let message: Result<IpcMessage, ArrowError> =
            SchemaAsIpc::new(&schema, &IpcWriteOptions::default()).try_into();
        let IpcMessage(dataset_schema) =
            message.map_err(|e| Status::internal(format!("encoding the schema: {e}")))?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: query.query.into_bytes().into(),
            dataset_schema,
            // No parameters.
            parameter_schema: Default::default(),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        // Nothing is kept for a prepared statement.
        Ok(())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&SQL_INFO).schema();
        info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let builder = query.into_builder(&SQL_INFO);
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let store = &self.store(&request);
        let mut builder = query.into_builder();
        let mut names: Vec<String> = self.session(store).await?.catalog_names();
        names.sort();
        for name in names {
            builder.append(name);
        }
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let store = &self.store(&request);
        let mut builder = query.into_builder();
        let ctx = self.session(store).await?;
        for catalog_name in ctx.catalog_names() {
            if let Some(catalog) = ctx.catalog(&catalog_name) {
                for schema_name in catalog.schema_names() {
                    builder.append(&catalog_name, schema_name);
                }
            }
        }
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let store = &self.store(&request);
        let mut builder: GetTablesBuilder = query.into_builder();
        for (catalog, schema, table, kind, table_schema) in self.tables(store).await? {
            builder
                .append(catalog, schema, table, kind, &flight_schema(&table_schema))
                .map_err(|e| Status::internal(format!("encoding the table list: {e}")))?;
        }
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let store = &self.store(&request);
        let mut kinds: Vec<&str> = self.tables(store).await?.iter().map(|t| t.3).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut builder = query.into_builder();
        for kind in kinds {
            builder.append(kind);
        }
        Ok(one_batch(builder.schema(), builder.build()))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
