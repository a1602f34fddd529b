//! What a frame's columns are, by name and kind: the [`Schema`] a model keeps to check
//! predict-time input against what it was trained on. A leaf module: frames, errors and
//! models all speak of column kinds.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The kinds of column the crate understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric,
    /// Strings taken as levels.
    Categorical,
    /// Strings taken as free text (tokens, TF-IDF).
    Text,
}

impl fmt::Display for ColumnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Categorical => "categorical",
            ColumnKind::Text => "text",
        })
    }
}

/// Names and kinds of a frame's columns; stored in models to check predict-time input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub fields: Vec<Field>,
}

/// One column of a [`Schema`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// Shared with the columns of frames checked against it.
    pub name: Arc<str>,
    pub kind: ColumnKind,
}

impl Schema {
    /// The field with this name, if any.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| *f.name == *name)
    }
}
