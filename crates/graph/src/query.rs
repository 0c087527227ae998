//! OData system query options of list requests: `$select`, `$orderby`, `$top`, `$count`, checked against an
//! entity. `$filter` has its own module ([`crate::filter`]).

use crate::GraphError;
use crate::entity::{Entity, JsonShape};

/// The largest `$top` Graph accepts on directory objects.
pub const MAX_TOP: u32 = 999;
/// The page size when `$top` is absent.
pub const DEFAULT_TOP: u32 = 100;

/// Parses `$select=a,b`: canonical property names, in the order given, without duplicates. An empty item
/// (`id,,displayName`, a trailing comma) is a syntax error, as in Graph.
pub fn parse_select(entity: &Entity, text: &str) -> Result<Vec<&'static str>, GraphError> {
    parse_select_in(&[entity], entity.name, text)
}

/// Parses `$select` on a collection of directory objects of several types (`members`, `memberOf`,
/// `directReports`): a name is valid when one of `entities` has it; each object then shows those it has.
pub fn parse_select_any(entities: &[&Entity], text: &str) -> Result<Vec<&'static str>, GraphError> {
    parse_select_in(entities, "microsoft.graph.directoryObject", text)
}

fn parse_select_in(entities: &[&Entity], type_name: &str, text: &str) -> Result<Vec<&'static str>, GraphError> {
    if text.trim().is_empty() {
        return Err(GraphError::bad("The $select query option is empty."));
    }
    let mut selected = Vec::new();
    let mut position = 0;
    for item in text.split(',') {
        let name = item.trim();
        let item_end = position + item.chars().count();
        if name.is_empty() {
            return Err(GraphError::bad(if item_end < text.chars().count() {
                format!("Syntax error: character ',' is not valid at position {item_end} in '{text}'.")
            } else {
                format!("Syntax error: a property name was expected at the end of '{text}'.")
            }));
        }
        position = item_end + 1;
        let mut found = false;
        for entity in entities {
            let canonical = entity.extension(name).or_else(|| {
                entity
                    .property(name)
                    .filter(|property| property.shape != JsonShape::WriteOnly)
                    .map(|property| property.name)
            });
            if let Some(canonical) = canonical {
                found = true;
                if !selected.contains(&canonical) {
                    selected.push(canonical);
                }
            }
        }
        if !found {
            return Err(GraphError::bad(format!("Could not find a property named '{name}' on type '{type_name}'.")));
        }
    }
    Ok(selected)
}

/// Which property a list is sorted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderBy {
    DisplayName,
    UserPrincipalName,
}

/// Parses `$orderby=displayName desc`. Only displayName (users and groups) and userPrincipalName (users) sort.
pub fn parse_orderby(entity: &Entity, text: &str) -> Result<(OrderBy, bool), GraphError> {
    let mut words = text.split_whitespace();
    let name = words.next().ok_or_else(|| GraphError::bad("The $orderby query option is empty."))?;
    let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            let position = text.find(other).unwrap_or(0);
            return Err(GraphError::bad(format!(
                "Syntax error at position {position} in '{text}': expected 'asc' or 'desc', not '{other}'."
            )));
        }
    };
    if words.next().is_some() || text.contains(',') {
        return Err(GraphError::bad("Sorting on more than one property is not supported."));
    }
    let order = if name.eq_ignore_ascii_case("displayName") {
        OrderBy::DisplayName
    } else if name.eq_ignore_ascii_case("userPrincipalName") && entity.property("userPrincipalName").is_some() {
        OrderBy::UserPrincipalName
    } else if entity.property(name).is_some() {
        return Err(GraphError::bad(format!(
            "Sorting by '{name}' is not supported: use displayName or userPrincipalName."
        )));
    } else {
        return Err(GraphError::bad(format!("Could not find a property named '{name}' on type '{}'.", entity.name)));
    };
    Ok((order, descending))
}

/// Parses `$top`: 1 to 999.
pub fn parse_top(text: &str) -> Result<u32, GraphError> {
    match text.trim().parse::<u32>() {
        Ok(top) if (1..=MAX_TOP).contains(&top) => Ok(top),
        _ => Err(GraphError::bad(format!("Invalid page size specified: '{text}'. Must be between 1 and {MAX_TOP}."))),
    }
}

/// Parses `$count=true|false`.
pub fn parse_count(text: &str) -> Result<bool, GraphError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(GraphError::bad(format!("Invalid value '{text}' for $count: use true or false."))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::{GROUP, USER};

    #[test]
    fn options_are_checked_against_the_entity() {
        assert_eq!(parse_select(&USER, "id,DisplayName, id").unwrap(), vec!["id", "displayName"]);
        assert!(parse_select(&USER, "passwordProfile").is_err());
        assert_eq!(
            parse_select(&USER, "shoeSize").unwrap_err().to_string(),
            "Could not find a property named 'shoeSize' on type 'microsoft.graph.user'."
        );
        assert_eq!(parse_orderby(&USER, "userPrincipalName desc").unwrap(), (OrderBy::UserPrincipalName, true));
        assert_eq!(parse_orderby(&GROUP, "displayname").unwrap(), (OrderBy::DisplayName, false));
        assert!(parse_orderby(&GROUP, "userPrincipalName").is_err());
        assert!(parse_orderby(&USER, "jobTitle").is_err());
        assert_eq!(parse_top("5").unwrap(), 5);
        assert!(parse_top("0").is_err() && parse_top("1000").is_err() && parse_top("x").is_err());
        assert!(parse_count("TRUE").unwrap() && parse_count("maybe").is_err());
    }

    #[test]
    fn empty_select_items_and_bad_directions_are_syntax_errors() {
        let error = |result: Result<Vec<&str>, GraphError>| result.unwrap_err().to_string();
        assert_eq!(
            error(parse_select(&USER, "id,,")),
            "Syntax error: character ',' is not valid at position 3 in 'id,,'."
        );
        assert_eq!(
            error(parse_select(&USER, ",id")),
            "Syntax error: character ',' is not valid at position 0 in ',id'."
        );
        assert_eq!(
            error(parse_select(&USER, "id, ,mail")),
            "Syntax error: character ',' is not valid at position 4 in 'id, ,mail'."
        );
        assert_eq!(
            error(parse_select(&USER, "id,")),
            "Syntax error: a property name was expected at the end of 'id,'."
        );
        assert_eq!(error(parse_select(&USER, " ")), "The $select query option is empty.");
        assert_eq!(
            parse_orderby(&USER, "displayName sideways").unwrap_err().to_string(),
            "Syntax error at position 12 in 'displayName sideways': expected 'asc' or 'desc', not 'sideways'."
        );
        assert!(parse_orderby(&USER, "displayName desc,").is_err());
        assert!(parse_orderby(&USER, "displayName,,").is_err());
        assert!(parse_orderby(&USER, "").is_err());
        // Directory objects of several types: a property of either, each object showing what it has.
        assert_eq!(parse_select_any(&[&USER, &GROUP], "ID,mailNickname").unwrap(), vec!["id", "mailNickname"]);
        assert_eq!(parse_select_any(&[&USER, &GROUP], "securityEnabled").unwrap(), vec!["securityEnabled"]);
        assert_eq!(
            error(parse_select_any(&[&USER, &GROUP], "id,shoeSize")),
            "Could not find a property named 'shoeSize' on type 'microsoft.graph.directoryObject'."
        );
    }
}
