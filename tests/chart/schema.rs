//! A validator for the JSON Schema keywords `values.schema.json` uses (helm validates values
//! against that file on install, upgrade, lint and template). Unknown keywords are errors, so
//! the schema cannot grow a rule this test silently skips.

use serde_json::Value;

/// Keywords checked here, and annotations that carry no rule.
const KEYWORDS: &[&str] = &[
    "type",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "pattern",
    "properties",
    "additionalProperties",
    "not",
];
const ANNOTATIONS: &[&str] = &["$schema", "title", "description"];

/// Every violation of `schema` by `value`, each with its dotted path.
pub fn validate(schema: &Value, value: &Value) -> Result<Vec<String>, String> {
    let mut errors = Vec::new();
    check(schema, value, "", &mut errors)?;
    Ok(errors)
}

fn type_matches(name: &str, value: &Value) -> Result<bool, String> {
    Ok(match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
        "number" => value.is_number(),
        "null" => value.is_null(),
        other => return Err(format!("unknown type {other:?}")),
    })
}

fn check(
    schema: &Value,
    value: &Value,
    path: &str,
    errors: &mut Vec<String>,
) -> Result<(), String> {
    let schema = schema
        .as_object()
        .ok_or_else(|| format!("schema at {path:?} is not an object"))?;
    for key in schema.keys() {
        if !KEYWORDS.contains(&key.as_str()) && !ANNOTATIONS.contains(&key.as_str()) {
            return Err(format!("unsupported schema keyword {key:?} at {path:?}"));
        }
    }
    let at = if path.is_empty() { "<root>" } else { path };
    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            other => return Err(format!("bad type {other}")),
        };
        let mut any = false;
        for name in &names {
            any |= type_matches(name, value)?;
        }
        if !any {
            errors.push(format!("{at}: {value} is not of type {names:?}"));
            return Ok(());
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    let number = value.as_f64();
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), number)
        && n < min
    {
        errors.push(format!("{at}: {n} is below {min}"));
    }
    if let (Some(max), Some(n)) = (schema.get("maximum").and_then(Value::as_f64), number)
        && n > max
    {
        errors.push(format!("{at}: {n} is above {max}"));
    }
    if let Some(s) = value.as_str() {
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && (s.chars().count() as u64) < min
        {
            errors.push(format!("{at}: {s:?} is shorter than {min}"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            let re = regex::Regex::new(pattern).map_err(|e| format!("pattern at {at}: {e}"))?;
            if !re.is_match(s) {
                errors.push(format!("{at}: {s:?} does not match {pattern}"));
            }
        }
    }
    if let Some(not) = schema.get("not") {
        let mut inner = Vec::new();
        check(not, value, path, &mut inner)?;
        if inner.is_empty() {
            errors.push(format!(
                "{at}: {value} matches a form this value must not take"
            ));
        }
    }
    if let Some(map) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, item) in map {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match properties.and_then(|p| p.get(key)) {
                Some(sub) => check(sub, item, &child, errors)?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{child}: not a value of this chart"));
                }
                None => {}
            }
        }
    }
    Ok(())
}
