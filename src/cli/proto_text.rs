//! A protobuf message as plain data, written in the two forms Bazel writes its build events
//! in: a message built field by field (proto field names, typed values) in; one line of
//! proto3 JSON (`lowerCamelCase` names, 64-bit integers as strings, enums by name) or the
//! protobuf text format out.

use std::fmt::Write;

/// One field's value, typed as the proto declares it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    /// `int32`: a JSON number.
    Int(i64),
    /// `int64`: a JSON string, as proto3 JSON writes 64-bit integers.
    Long(i64),
    Bool(bool),
    /// An enum value, by name.
    Enum(&'static str),
    Msg(Msg),
}

/// A message: its fields in declaration order; a repeated field holds several values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Msg {
    fields: Vec<(&'static str, Vec<Value>, bool)>,
}

impl Msg {
    pub fn new() -> Msg {
        Msg::default()
    }

    pub fn set(mut self, name: &'static str, value: Value) -> Msg {
        self.fields.push((name, vec![value], false));
        self
    }

    pub fn str(self, name: &'static str, value: impl Into<String>) -> Msg {
        self.set(name, Value::Str(value.into()))
    }

    pub fn int(self, name: &'static str, value: i64) -> Msg {
        self.set(name, Value::Int(value))
    }

    pub fn long(self, name: &'static str, value: i64) -> Msg {
        self.set(name, Value::Long(value))
    }

    pub fn bool(self, name: &'static str, value: bool) -> Msg {
        self.set(name, Value::Bool(value))
    }

    pub fn enumeration(self, name: &'static str, value: &'static str) -> Msg {
        self.set(name, Value::Enum(value))
    }

    pub fn msg(self, name: &'static str, value: Msg) -> Msg {
        self.set(name, Value::Msg(value))
    }

    /// A repeated field; an empty one is left out, as proto3 does.
    pub fn repeated(mut self, name: &'static str, values: Vec<Value>) -> Msg {
        if !values.is_empty() {
            self.fields.push((name, values, true));
        }
        self
    }

    /// The message as one line of proto3 JSON, fields in declaration order.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        out.push('{');
        for (i, (name, values, repeated)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&json_string(&camel_case(name)));
            out.push(':');
            if *repeated {
                out.push('[');
                for (k, value) in values.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    write_json_value(value, out);
                }
                out.push(']');
            } else {
                write_json_value(&values[0], out);
            }
        }
        out.push('}');
    }

    /// The message in the protobuf text format, as `TextFormat.printToString` writes it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_text(0, &mut out);
        out
    }

    fn write_text(&self, depth: usize, out: &mut String) {
        let indent = "  ".repeat(depth);
        for (name, values, _) in &self.fields {
            for value in values {
                match value {
                    Value::Msg(msg) => {
                        let _ = writeln!(out, "{indent}{name} {{");
                        msg.write_text(depth + 1, out);
                        let _ = writeln!(out, "{indent}}}");
                    }
                    Value::Str(s) => {
                        let _ = writeln!(out, "{indent}{name}: \"{}\"", text_escape(s));
                    }
                    Value::Int(n) | Value::Long(n) => {
                        let _ = writeln!(out, "{indent}{name}: {n}");
                    }
                    Value::Bool(b) => {
                        let _ = writeln!(out, "{indent}{name}: {b}");
                    }
                    Value::Enum(e) => {
                        let _ = writeln!(out, "{indent}{name}: {e}");
                    }
                }
            }
        }
    }
}

fn write_json_value(value: &Value, out: &mut String) {
    match value {
        Value::Str(s) => out.push_str(&json_string(s)),
        Value::Int(n) => out.push_str(&n.to_string()),
        Value::Long(n) => out.push_str(&json_string(&n.to_string())),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Enum(e) => out.push_str(&json_string(e)),
        Value::Msg(m) => m.write_json(out),
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// `start_time_millis` → `startTimeMillis`, proto3 JSON's field names.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A string in the text format's C-style escapes.
fn text_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Msg {
        Msg::new()
            .msg("id", Msg::new().msg("started", Msg::new()))
            .msg(
                "started",
                Msg::new()
                    .str("uuid", "a\"b")
                    .long("start_time_millis", 12)
                    .int("run", 1)
                    .bool("cached_locally", true)
                    .enumeration("status", "PASSED"),
            )
            .repeated("tag", vec![Value::Str("x".into()), Value::Str("y".into())])
            .repeated("none", Vec::new())
    }

    #[test]
    fn json_follows_proto3_mapping() {
        assert_eq!(
            sample().to_json(),
            r#"{"id":{"started":{}},"started":{"uuid":"a\"b","startTimeMillis":"12","run":1,"cachedLocally":true,"status":"PASSED"},"tag":["x","y"]}"#
        );
    }

    #[test]
    fn text_follows_the_text_format() {
        assert_eq!(
            sample().to_text(),
            "id {\n  started {\n  }\n}\nstarted {\n  uuid: \"a\\\"b\"\n  start_time_millis: 12\n  \
             run: 1\n  cached_locally: true\n  status: PASSED\n}\ntag: \"x\"\ntag: \"y\"\n"
        );
    }
}
