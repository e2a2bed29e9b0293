//! Keyset pagination for list endpoints: `?limit=&cursor=`, answered as
//! `{items, next_cursor}`. A cursor is opaque to clients.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vorg_store::Page;

use crate::error::{ApiError, ApiResult};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 200 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl PageQuery {
    pub fn page(&self) -> ApiResult<Page> {
        page(self.limit, self.cursor.as_deref())
    }
}

/// Checks `limit` and `cursor` query parameters into a store page.
pub fn page(limit: Option<i64>, cursor: Option<&str>) -> ApiResult<Page> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "query.limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let before = match cursor {
        None => None,
        Some(c) => Some(c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::invalid("query.cursor", "is not a cursor this server issued")
        })?),
    };
    Ok(Page { limit, before })
}

/// One page of a list.
#[derive(Serialize, ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Paged<T> {
    /// Builds a page from rows fetched with `page`, converting each with `view`.
    pub fn new<R>(rows: Vec<R>, page: Page, id: impl Fn(&R) -> i64, view: impl Fn(R) -> T) -> Self {
        let next_cursor = if rows.len() as i64 == page.limit {
            rows.last().map(|r| id(r).to_string())
        } else {
            None
        };
        Paged {
            items: rows.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}
