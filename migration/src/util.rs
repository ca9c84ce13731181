//! Small helpers shared by the migrations.

use sea_orm_migration::prelude::*;

/// A column by name.
pub fn col(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
}

/// `BIGINT` auto-increment primary key (`bigserial` on PostgreSQL, `INTEGER PRIMARY KEY` on SQLite).
pub fn id_pk() -> ColumnDef {
    ColumnDef::new(Alias::new("id"))
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

pub fn timestamp(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

pub fn timestamp_null(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

/// `CHECK (<column> IN ('a', 'b', ...))`.
pub fn one_of(column: &str, values: &[&str]) -> SimpleExpr {
    Expr::col(Alias::new(column)).is_in(values.iter().map(|v| String::from(*v)))
}

/// A foreign key `<table>.<column> -> <target>.id` with `ON DELETE RESTRICT`.
pub fn fk_restrict(table: &str, column: &str, target: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_{column}"))
        .from(Alias::new(table), Alias::new(column))
        .to(Alias::new(target), Alias::new("id"))
        .on_delete(ForeignKeyAction::Restrict)
        .on_update(ForeignKeyAction::Restrict)
        .to_owned()
}

/// A foreign key `<table>.<column> -> <target>.id` with `ON DELETE CASCADE`: rows that only
/// make sense with their owner go with it.
pub fn fk_cascade(table: &str, column: &str, target: &str) -> ForeignKeyCreateStatement {
    let mut fk = fk_restrict(table, column, target);
    fk.on_delete(ForeignKeyAction::Cascade);
    fk
}

pub fn index(table: &str, columns: &[&str]) -> IndexCreateStatement {
    let mut idx = Index::create();
    idx.name(format!("idx_{table}_{}", columns.join("_")))
        .table(Alias::new(table));
    for c in columns {
        idx.col(Alias::new(*c));
    }
    idx.to_owned()
}
