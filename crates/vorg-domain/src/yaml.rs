//! YAML (and JSON, which is YAML) documents from clients, parsed with bounds: a size limit,
//! a nesting limit, and no anchors, aliases or merge keys, so a small document cannot expand
//! into a large value ("billion laughs") or a deep one. Parsing only: no I/O, no schema.
//!
//! Two parsers read the text. `saphyr-parser` streams its events first, and the document
//! is refused at the first anchor (`&a`), alias (`*a`), plain `<<` key or collection nested
//! too deep; then `yaml_serde` (the parser the rest of vorg uses) builds the value, so
//! scalars are typed exactly as before. The value is built under a budget proportional to
//! the input, which holds even where the two parsers might disagree about an alias.

use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The largest document accepted by [`parse_untrusted`], in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The deepest nesting of sequences and mappings accepted by [`parse_untrusted`].
pub const MAX_DEPTH: usize = 64;

/// The bounds a document is parsed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest text, in bytes.
    pub max_bytes: usize,
    /// The deepest nesting of sequences and mappings (the root collection is level 1).
    pub max_depth: usize,
}

impl Limits {
    /// [`MAX_DOCUMENT_BYTES`] and [`MAX_DEPTH`].
    pub const DEFAULT: Limits = Limits {
        max_bytes: MAX_DOCUMENT_BYTES,
        max_depth: MAX_DEPTH,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Why a document was refused. The message is safe to show to the client and names the
/// limit passed. `Display` starts with `line N: ` where the screen found the problem;
/// [`YamlError::line`] and [`YamlError::reason`] give the two parts apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YamlError {
    /// Longer than [`Limits::max_bytes`].
    TooLarge { len: usize, limit: usize },
    /// Nested deeper than [`Limits::max_depth`].
    TooDeep { line: Option<usize>, limit: usize },
    /// An anchor (`&a`) or an alias (`*a`).
    AnchorOrAlias { line: usize },
    /// A plain `<<` key.
    MergeKey { line: usize },
    /// More nodes or text than the input's size allows (aliases the screen missed).
    Expands { limit: usize, what: &'static str },
    /// Not YAML; `message` is `yaml_serde`'s (it names the line and column).
    Syntax {
        line: Option<usize>,
        message: String,
    },
}

impl YamlError {
    /// The 1-based line the problem is on, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            YamlError::AnchorOrAlias { line } | YamlError::MergeKey { line } => Some(*line),
            YamlError::TooDeep { line, .. } | YamlError::Syntax { line, .. } => *line,
            YamlError::TooLarge { .. } | YamlError::Expands { .. } => None,
        }
    }

    /// The reason, without the line.
    pub fn reason(&self) -> String {
        match self {
            YamlError::TooLarge { len, limit } => {
                format!("document is {len} bytes, longer than {limit} bytes")
            }
            YamlError::TooDeep { limit, .. } => {
                format!("document is nested deeper than {limit} levels")
            }
            YamlError::AnchorOrAlias { .. } => {
                "YAML anchors (&name) and aliases (*name) are not accepted; write the value out"
                    .to_owned()
            }
            YamlError::MergeKey { .. } => {
                "YAML merge keys (<<) are not accepted; write the keys out".to_owned()
            }
            YamlError::Expands { limit, what } => {
                format!("document expands to more than {limit} {what}")
            }
            YamlError::Syntax { message, .. } => format!("not YAML or JSON: {message}"),
        }
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.line()) {
            // yaml_serde's message already says where.
            (YamlError::Syntax { .. }, _) | (_, None) => f.write_str(&self.reason()),
            (_, Some(line)) => write!(f, "line {line}: {}", self.reason()),
        }
    }
}

impl std::error::Error for YamlError {}

/// Parses a client's YAML or JSON document under [`Limits::DEFAULT`].
pub fn parse_untrusted(text: &str) -> Result<Value, YamlError> {
    parse_untrusted_with(text, Limits::DEFAULT)
}

/// Parses a client's YAML or JSON document under `limits`. CPU-bound (up to tens of
/// milliseconds for a document at the size limit): async callers run it off the runtime.
pub fn parse_untrusted_with(text: &str, limits: Limits) -> Result<Value, YamlError> {
    if text.len() > limits.max_bytes {
        return Err(YamlError::TooLarge {
            len: text.len(),
            limit: limits.max_bytes,
        });
    }
    match screen(text, limits.max_depth) {
        Ok(()) => build(text, limits.max_depth),
        Err(Screened::Refused(e)) => Err(e),
        // A syntax error: yaml_serde's message is the one vorg has always shown; should
        // yaml_serde accept what saphyr refused, the document is still refused.
        Err(Screened::Syntax(saphyr)) => match build(text, limits.max_depth) {
            Err(e) => Err(e),
            Ok(_) => Err(saphyr),
        },
    }
}

enum Screened {
    Refused(YamlError),
    Syntax(YamlError),
}

/// Where a node stands in its parent: a mapping alternates keys and values.
enum Frame {
    Sequence,
    Mapping { next_is_key: bool },
}

/// Streams the events and stops at the first anchor, alias, merge key or level too deep.
fn screen(text: &str, max_depth: usize) -> Result<(), Screened> {
    let mut stack: Vec<Frame> = Vec::new();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| {
            let at = e.marker();
            Screened::Syntax(YamlError::Syntax {
                line: Some(at.line()),
                message: format!("{} at line {} column {}", e.info(), at.line(), at.col() + 1),
            })
        })?;
        let line = span.start.line();
        let refuse = |e: YamlError| Err(Screened::Refused(e));
        let is_key = matches!(stack.last(), Some(Frame::Mapping { next_is_key: true }));
        match event {
            Event::Alias(_) => return refuse(YamlError::AnchorOrAlias { line }),
            Event::Scalar(_, _, anchor, _)
            | Event::SequenceStart(anchor, _)
            | Event::MappingStart(anchor, _)
                if anchor != 0 =>
            {
                return refuse(YamlError::AnchorOrAlias { line });
            }
            Event::Scalar(value, style, _, _) => {
                if is_key && style == ScalarStyle::Plain && value == "<<" {
                    return refuse(YamlError::MergeKey { line });
                }
                node_done(&mut stack);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= max_depth {
                    return refuse(YamlError::TooDeep {
                        line: Some(line),
                        limit: max_depth,
                    });
                }
                stack.push(match event {
                    Event::SequenceStart(..) => Frame::Sequence,
                    _ => Frame::Mapping { next_is_key: true },
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
                node_done(&mut stack);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => {}
        }
    }
    Ok(())
}

/// A key or value ended: the parent mapping expects the other next.
fn node_done(stack: &mut [Frame]) {
    if let Some(Frame::Mapping { next_is_key }) = stack.last_mut() {
        *next_is_key = !*next_is_key;
    }
}

/// The value, by `yaml_serde`, built under a budget of nodes and string bytes a few times
/// the input's size (a document without aliases never comes near it).
fn build(text: &str, max_depth: usize) -> Result<Value, YamlError> {
    let limit = 2 * text.len() + 64;
    let mut budget = Budget {
        nodes: limit,
        bytes: limit,
        limit,
        refused: None,
    };
    let seed = Node {
        budget: &mut budget,
        depth: 0,
        max_depth,
    };
    let result = seed.deserialize(serde_yaml::Deserializer::from_str(text));
    if let Some(e) = budget.refused {
        return Err(e);
    }
    result.map_err(|e| YamlError::Syntax {
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    })
}

struct Budget {
    /// Nodes left.
    nodes: usize,
    /// Bytes of keys and strings left.
    bytes: usize,
    /// What both started at.
    limit: usize,
    /// Set when a bound was passed, so the error says which whatever yaml_serde makes of it.
    refused: Option<YamlError>,
}

impl Budget {
    fn take<E: de::Error>(&mut self, nodes: usize, bytes: usize) -> Result<(), E> {
        let limit = match (self.nodes.checked_sub(nodes), self.bytes.checked_sub(bytes)) {
            (Some(n), Some(b)) => {
                self.nodes = n;
                self.bytes = b;
                return Ok(());
            }
            (None, _) => YamlError::Expands {
                limit: self.limit,
                what: "nodes",
            },
            (_, None) => YamlError::Expands {
                limit: self.limit,
                what: "bytes of text",
            },
        };
        let message = limit.to_string();
        self.refused = Some(limit);
        Err(E::custom(message))
    }
}

/// One node of the value; the same result as `serde_json::Value`'s own `Deserialize`.
struct Node<'b> {
    budget: &'b mut Budget,
    depth: usize,
    max_depth: usize,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.budget.take::<D::Error>(1, 0)?;
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Number::deserialize(de::value::I128Deserializer::<E>::new(v)).map(Value::Number)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Number::deserialize(de::value::U128Deserializer::<E>::new(v)).map(Value::Number)
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.budget.take::<E>(0, v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.budget.take::<E>(0, v.len())?;
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.enter::<A::Error>()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Node {
            budget: &mut *self.budget,
            depth,
            max_depth: self.max_depth,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let depth = self.enter::<A::Error>()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key {
            budget: &mut *self.budget,
        })? {
            let value = map.next_value_seed(Node {
                budget: &mut *self.budget,
                depth,
                max_depth: self.max_depth,
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

impl Node<'_> {
    /// The depth of this collection's children, or an error past the limit.
    fn enter<E: de::Error>(&mut self) -> Result<usize, E> {
        if self.depth >= self.max_depth {
            let e = YamlError::TooDeep {
                line: None,
                limit: self.max_depth,
            };
            let message = e.to_string();
            self.budget.refused = Some(e);
            return Err(E::custom(message));
        }
        Ok(self.depth + 1)
    }
}

/// A mapping key: a string, as `serde_json::Value` reads keys.
struct Key<'b> {
    budget: &'b mut Budget,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        self.budget.take::<D::Error>(1, 0)?;
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Key<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.budget.take::<E>(0, v.len())?;
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        self.budget.take::<E>(0, v.len())?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests;
