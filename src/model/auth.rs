//! Users, tokens and the authenticated caller.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub is_admin: bool,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

/// Who is making a request, as established from their token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Caller {
    pub user_id: i64,
    pub email: String,
    pub is_admin: bool,
    pub is_active: bool,
    /// What part of the API the token may use; `None` for all the user may.
    pub scope: Option<String>,
}

/// A token as listed to an operator: never the token itself.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: i64,
    pub prefix: String,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}
