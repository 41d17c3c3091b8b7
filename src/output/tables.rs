//! Tables for other engines: the normalised flow table (`latmove flows`)
//! and the feature table (`latmove features`), written as Parquet (or CSV)
//! in batches, so memory stays flat in the table's length.
//!
//! Both schemas are documented in `docs/scale-out.md`; `sql/features.sql`
//! turns the first into the second.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Rows per record batch (and per Parquet row group page flush).
const BATCH_ROWS: usize = 65_536;

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// UTF-8 text.
    Str,
    /// 64-bit integer.
    Int,
    /// 64-bit float.
    Float,
    /// Boolean.
    Bool,
}

impl Kind {
    fn arrow(self) -> DataType {
        match self {
            Kind::Str => DataType::Utf8,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Bool => DataType::Boolean,
        }
    }
}

enum Builder {
    Str(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
}

impl Builder {
    fn new(kind: Kind) -> Builder {
        match kind {
            Kind::Str => Builder::Str(StringBuilder::new()),
            Kind::Int => Builder::Int(Int64Builder::new()),
            Kind::Float => Builder::Float(Float64Builder::new()),
            Kind::Bool => Builder::Bool(BooleanBuilder::new()),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
        }
    }
}

/// Parquet or CSV, by the output's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableFormat {
    /// Apache Parquet (snappy).
    Parquet,
    /// CSV with a header line; missing values empty.
    Csv,
}

impl TableFormat {
    /// The format a path's extension names: `.parquet` (or `.pq`) or
    /// `.csv`.
    pub(crate) fn of_path(path: &std::path::Path) -> Result<TableFormat> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "parquet" | "pq" => Ok(TableFormat::Parquet),
            "csv" => Ok(TableFormat::Csv),
            _ => anyhow::bail!(
                "{}: the table's name must end in .parquet or .csv (it tells the format)",
                path.display()
            ),
        }
    }
}

enum Sink<'w> {
    Parquet(Box<ArrowWriter<&'w mut (dyn Write + Send)>>),
    Csv(Box<csv::Writer<&'w mut (dyn Write + Send)>>),
}

/// Writes a table row by row: a value per column in schema order, then
/// [`TableWriter::end_row`].
pub(crate) struct TableWriter<'w> {
    schema: Arc<Schema>,
    kinds: Vec<Kind>,
    builders: Vec<Builder>,
    /// The next column to be given a value.
    at: usize,
    rows: usize,
    written: u64,
    sink: Sink<'w>,
}

impl<'w> TableWriter<'w> {
    /// A writer of `columns` into `out`.
    pub(crate) fn new(
        out: &'w mut (dyn Write + Send),
        format: TableFormat,
        columns: &[(&str, Kind)],
    ) -> Result<TableWriter<'w>> {
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(n, k)| Field::new(*n, k.arrow(), true))
                .collect::<Vec<_>>(),
        ));
        let sink = match format {
            TableFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(1 << 20))
                    .build();
                Sink::Parquet(Box::new(
                    ArrowWriter::try_new(out, schema.clone(), Some(props))
                        .context("starting the Parquet file")?,
                ))
            }
            TableFormat::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(columns.iter().map(|c| c.0))?;
                Sink::Csv(Box::new(w))
            }
        };
        Ok(TableWriter {
            schema,
            kinds: columns.iter().map(|c| c.1).collect(),
            builders: columns.iter().map(|c| Builder::new(c.1)).collect(),
            at: 0,
            rows: 0,
            written: 0,
            sink,
        })
    }

    fn next(&mut self, kind: Kind) -> &mut Builder {
        assert_eq!(
            self.kinds[self.at], kind,
            "column {} given a {kind:?}",
            self.at
        );
        self.at += 1;
        &mut self.builders[self.at - 1]
    }

    /// The next column's text.
    pub(crate) fn str(&mut self, v: Option<&str>) {
        if let Builder::Str(b) = self.next(Kind::Str) {
            b.append_option(v);
        }
    }

    /// The next column's integer.
    pub(crate) fn int(&mut self, v: Option<i64>) {
        if let Builder::Int(b) = self.next(Kind::Int) {
            b.append_option(v);
        }
    }

    /// The next column's number.
    pub(crate) fn float(&mut self, v: Option<f64>) {
        if let Builder::Float(b) = self.next(Kind::Float) {
            b.append_option(v);
        }
    }

    /// The next column's boolean.
    pub(crate) fn bool(&mut self, v: Option<bool>) {
        if let Builder::Bool(b) = self.next(Kind::Bool) {
            b.append_option(v);
        }
    }

    /// Ends a row (every column given); writes a batch when one is full.
    pub(crate) fn end_row(&mut self) -> Result<()> {
        assert_eq!(self.at, self.kinds.len(), "a row ended early");
        self.at = 0;
        self.rows += 1;
        if self.rows == BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        match &mut self.sink {
            Sink::Parquet(w) => w.write(&batch).context("writing a Parquet batch")?,
            Sink::Csv(w) => write_csv_batch(w, &batch)?,
        }
        self.written += self.rows as u64;
        self.rows = 0;
        Ok(())
    }

    /// Writes what is left and the file's footer; returns the rows
    /// written.
    pub(crate) fn finish(mut self) -> Result<u64> {
        self.flush()?;
        match self.sink {
            Sink::Parquet(w) => drop(w.close().context("closing the Parquet file")?),
            Sink::Csv(mut w) => w.flush()?,
        }
        Ok(self.written)
    }
}

/// One batch as CSV records; missing values are empty cells, texts
/// (addresses, labels) made safe for a spreadsheet.
fn write_csv_batch(
    w: &mut csv::Writer<&mut (dyn Write + Send)>,
    batch: &RecordBatch,
) -> Result<()> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    let mut cells: Vec<String> = vec![String::new(); batch.num_columns()];
    for r in 0..batch.num_rows() {
        for (cell, col) in cells.iter_mut().zip(batch.columns()) {
            cell.clear();
            if col.is_null(r) {
                continue;
            }
            match col.data_type() {
                DataType::Utf8 => cell.push_str(&crate::util::text::csv_text(
                    col.as_string::<i32>().value(r),
                )),
                DataType::Int64 => {
                    cell.push_str(&col.as_primitive::<Int64Type>().value(r).to_string())
                }
                DataType::Float64 => {
                    cell.push_str(&col.as_primitive::<Float64Type>().value(r).to_string())
                }
                DataType::Boolean => cell.push_str(if col.as_boolean().value(r) {
                    "true"
                } else {
                    "false"
                }),
                other => unreachable!("no column of type {other}"),
            }
        }
        w.write_record(&cells)?;
    }
    Ok(())
}
