//! Filtered, paginated listing of a table, built from whitelisted column names.

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, FromRow, QueryBuilder, Type};

use super::{on_conn, Conn, Page, Result, Slice};

/// One `column <op> value` test. Column names are `&'static str` chosen by the code, never taken
/// from the request.
#[derive(Debug, Clone)]
pub struct Condition {
    pub column: &'static str,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, Copy)]
pub enum Op {
    Eq,
    AtLeast,
    AtMost,
    /// Strictly less than.
    Below,
    /// A text column equal to the value, or starting with the value and a dot (topic prefixes).
    Under,
    /// The JSON object in the column has the key given as the (text) value.
    HasKey,
    /// The JSON object in the column is null or lacks the key.
    LacksKey,
}

#[derive(Debug, Clone)]
pub enum Value {
    Int(i64),
    Text(String),
    Bool(bool),
    Time(DateTime<Utc>),
    Uuid(uuid::Uuid),
}

impl Condition {
    pub fn eq(column: &'static str, value: Value) -> Self {
        Condition {
            column,
            op: Op::Eq,
            value,
        }
    }
}

fn push_where<'a, DB>(qb: &mut QueryBuilder<'a, DB>, conditions: &[Condition])
where
    DB: Database,
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
    bool: Encode<'a, DB> + Type<DB>,
    DateTime<Utc>: Encode<'a, DB> + Type<DB>,
    uuid::Uuid: Encode<'a, DB> + Type<DB>,
{
    let postgres = DB::NAME == "PostgreSQL";
    for (i, cond) in conditions.iter().enumerate() {
        qb.push(if i == 0 { " where " } else { " and " });
        let column = cond.column;
        match (cond.op, postgres) {
            (Op::Eq, _) => qb.push(format_args!("{column} = ")),
            (Op::AtLeast, _) => qb.push(format_args!("{column} >= ")),
            (Op::AtMost, _) => qb.push(format_args!("{column} <= ")),
            (Op::Below, _) => qb.push(format_args!("{column} < ")),
            (Op::Under, _) => {
                let Value::Text(prefix) = &cond.value else {
                    unreachable!("Under compares text")
                };
                qb.push(format_args!("({column} = "))
                    .push_bind(prefix.clone())
                    .push(format_args!(" or substr({column}, 1, length("))
                    .push_bind(prefix.clone())
                    .push(") + 1) = ")
            }
            (Op::HasKey, true) => qb.push(format_args!("coalesce(jsonb_exists({column}, ")),
            (Op::LacksKey, true) => qb.push(format_args!("not coalesce(jsonb_exists({column}, ")),
            (Op::HasKey, false) => qb.push(format_args!(
                "exists (select 1 from json_each({column}) where key = "
            )),
            (Op::LacksKey, false) => qb.push(format_args!(
                "not exists (select 1 from json_each({column}) where key = "
            )),
        };
        match &cond.value {
            Value::Int(v) => qb.push_bind(*v),
            Value::Text(v) => qb.push_bind(v.clone()),
            Value::Bool(v) => qb.push_bind(*v),
            Value::Time(v) => qb.push_bind(*v),
            Value::Uuid(v) => qb.push_bind(*v),
        };
        match (cond.op, postgres) {
            (Op::HasKey | Op::LacksKey, true) => qb.push("), false)"),
            (Op::HasKey | Op::LacksKey, false) => qb.push(")"),
            (Op::Under, _) => qb.push(" || '.')"),
            _ => qb,
        };
    }
}

/// Counts the rows of `table` matching `conditions` and reads one slice of them in id order,
/// so that walking the pages visits every row exactly once.
pub async fn count_and_page<T>(
    conn: Conn<'_>,
    table: &'static str,
    conditions: &[Condition],
    slice: Slice,
) -> Result<Page<T>>
where
    T: for<'r> FromRow<'r, sqlx::postgres::PgRow>
        + for<'r> FromRow<'r, sqlx::sqlite::SqliteRow>
        + Send
        + Unpin,
{
    count_and_page_ordered(conn, table, conditions, "id", slice).await
}

/// As [`count_and_page`], in the given order (which must end in a unique column).
pub async fn count_and_page_ordered<T>(
    conn: Conn<'_>,
    table: &'static str,
    conditions: &[Condition],
    order_by: &'static str,
    slice: Slice,
) -> Result<Page<T>>
where
    T: for<'r> FromRow<'r, sqlx::postgres::PgRow>
        + for<'r> FromRow<'r, sqlx::sqlite::SqliteRow>
        + Send
        + Unpin,
{
    Ok(on_conn!(conn, c => {
        let mut count = QueryBuilder::new(format!("select count(*) from {table}"));
        push_where(&mut count, conditions);
        let count: i64 = count.build_query_scalar().fetch_one(&mut *c).await?;

        let mut page = QueryBuilder::new(format!("select * from {table}"));
        push_where(&mut page, conditions);
        page.push(format_args!(" order by {order_by} limit ")).push_bind(slice.limit);
        page.push(" offset ").push_bind(slice.offset);
        let rows: Vec<T> = page.build_query_as().fetch_all(&mut *c).await?;
        Page { count, rows }
    }))
}
