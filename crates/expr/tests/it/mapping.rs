//! Mapping-expression vectors: every worked example of the Microsoft documentation cited in
//! `expressions.md` Part 1, plus the spec's decisions. Vectors the spec marks ambiguous say so.

use expect_test::{Expect, expect};
use tenantsync_expr::{Attributes, EvalContext, ExistingValues, FixedClock, Outcome, SplitMix64, parse_mapping};
use time::macros::datetime;

/// Evaluates `source` against the attributes in `attributes_json` at 2021-07-02 15:33:38 UTC.
#[track_caller]
fn check(source: &str, attributes_json: &str, expect: Expect) {
    check_with(source, attributes_json, &[], expect);
}

#[track_caller]
fn check_with(source: &str, attributes_json: &str, existing: &[&str], expect: Expect) {
    let actual = evaluate(source, attributes_json, existing);
    expect.assert_eq(&actual);
}

fn evaluate(source: &str, attributes_json: &str, existing: &[&str]) -> String {
    let mapping = match parse_mapping(source) {
        Ok(mapping) => mapping,
        Err(err) => return format!("parse error: {err}"),
    };
    let json: serde_json::Value = serde_json::from_str(attributes_json).expect("test attributes are JSON");
    let attributes = Attributes::from_json(&json).expect("test attributes are valid");
    let clock = FixedClock(datetime!(2021-07-02 15:33:38 UTC));
    let rng = SplitMix64::new(42);
    let existing = ExistingValues::new(existing);
    let ctx = EvalContext::new(&clock, &rng)
        .with_uniqueness(&existing)
        .with_source_tenant("11111111-2222-3333-4444-555555555555");
    match mapping.evaluate(&attributes, &ctx) {
        Ok(Outcome::Value(value)) => value.to_json().to_string(),
        Ok(Outcome::IgnoreFlow) => "ignore flow".to_owned(),
        Err(err) => format!("error: {err}"),
    }
}

const JOHN: &str = r#"{"userPrincipalName": "John.Doe@contoso.com", "givenName": "John", "surname": "Doe",
    "mail": null, "proxyAddresses": ["SMTP:john@contoso.com", "smtp:jd@contoso.com", "smtp:john@contoso.com"],
    "StatusHireDate": "2012-03-16-07:00", "accountEnabled": true}"#;

#[test]
fn append() {
    check(r#"Append([userPrincipalName], ".test")"#, JOHN, expect![[r#""John.Doe@contoso.com.test""#]]);
    check(r#"Append([missing], ".test")"#, JOHN, expect!["null"]);
    check(r#"Append([givenName], [missing])"#, JOHN, expect![[r#""John""#]]);
}

#[test]
fn bit_and() {
    check("BitAnd(&HF, &HF7)", "{}", expect![[r#""7""#]]);
    check("BitAnd([userAccountControl], 2)", r#"{"userAccountControl": "514"}"#, expect![[r#""2""#]]);
}

#[test]
fn cbool_and_comparisons() {
    check("CBool([a] = [b])", r#"{"a": "x", "b": "x"}"#, expect![[r#""True""#]]);
    check("CBool([a] = [b])", r#"{"a": "x", "b": "y"}"#, expect![[r#""False""#]]);
    check(r#"CBool("0")"#, "{}", expect![[r#""False""#]]);
    check(
        r#"CBool("maybe")"#,
        "{}",
        expect![[r#"error: function 'CBool' at 1:1: 'maybe' is not a Boolean or a number"#]],
    );
    check(r#"CBool("10" > "9")"#, "{}", expect![[r#""True""#]]);
    check(r#"CBool("b" > "a")"#, "{}", expect![[r#""True""#]]);
    check("CBool([missing] > 1)", "{}", expect!["error: comparison at 1:7: a null value can't be ordered"]);
    check(
        "CBool([proxyAddresses] = 1)",
        JOHN,
        expect!["error: comparison at 1:7: a multi-valued attribute can't be compared"],
    );
}

#[test]
fn cdate() {
    check(r#"CDate("2020-03-16-07:00")"#, "{}", expect![[r#""3/16/2020 7:00:00 AM""#]]);
    check(r#"CDate("2021-06-30+08:00")"#, "{}", expect![[r#""6/29/2021 4:00:00 PM""#]]);
    check(r#"CDate("2009-06-15T01:45:30-07:00")"#, "{}", expect![[r#""6/15/2009 8:45:30 AM""#]]);
    check(
        r#"CDate("2021-02-30")"#,
        "{}",
        expect![[r#"error: function 'CDate' at 1:1: '2021-02-30' is not a valid date"#]],
    );
    check("CDate([missing])", "{}", expect!["null"]);
}

#[test]
fn coalesce() {
    check("Coalesce([mail],[userPrincipalName])", JOHN, expect![[r#""John.Doe@contoso.com""#]]);
    check("Coalesce([mail],[userPrincipalName])", r#"{"mail": "", "userPrincipalName": "u"}"#, expect![[r#""""#]]);
    check(r#"Coalesce([a], [b], "")"#, "{}", expect![[r#""""#]]);
    check("Coalesce([a], [b])", "{}", expect!["null"]);
}

#[test]
fn base64_and_hex() {
    check(r#"ConvertToBase64("Hello world!")"#, "{}", expect![[r#""SABlAGwAbABvACAAdwBvAHIAbABkACEA""#]]);
    check(r#"ConvertToUTF8Hex("Hello world!")"#, "{}", expect![[r#""48656C6C6F20776F726C6421""#]]);
    // Cloud Sync only (ambiguous availability).
    check(r#"ConvertFromBase64("SABlAGwAbABvACAAdwBvAHIAbABkACEA")"#, "{}", expect![[r#""Hello world!""#]]);
    check(r#"ConvertFromBase64("SGVsbG8gd29ybGQh", UTF8)"#, "{}", expect![[r#""Hello world!""#]]);
}

#[test]
fn count_cstr_item() {
    check("Count([proxyAddresses])", JOHN, expect![[r#""3""#]]);
    check("Count([missing])", JOHN, expect![[r#""0""#]]);
    check("Count([givenName])", JOHN, expect![[r#""1""#]]);
    check("CStr([dn])", r#"{"dn": "CN=Joe,DC=contoso,DC=com"}"#, expect![[r#""CN=Joe,DC=contoso,DC=com""#]]);
    check("CStr([accountEnabled])", JOHN, expect![[r#""True""#]]);
    check("Item([proxyAddresses], 1)", JOHN, expect![[r#""SMTP:john@contoso.com""#]]);
    check(
        "Item([proxyAddresses], 0)",
        JOHN,
        expect!["error: function 'Item' at 1:1: index 0 is out of range 1..3 (Item is 1-based)"],
    );
    check(
        "Item([proxyAddresses], 4)",
        JOHN,
        expect!["error: function 'Item' at 1:1: index 4 is out of range 1..3 (Item is 1-based)"],
    );
    check("Item([missing], 1)", JOHN, expect!["null"]);
}

#[test]
fn date_add_table() {
    let hire = r#"{"StatusHireDate": "2012-03-16-07:00"}"#;
    check(r#"DateAdd("d", 7, CDate([StatusHireDate]))"#, hire, expect![[r#""3/23/2012 7:00:00 AM""#]]);
    check(r#"DateAdd("d", -10, CDate([StatusHireDate]))"#, hire, expect![[r#""3/6/2012 7:00:00 AM""#]]);
    check(r#"DateAdd("ww", 2, CDate([StatusHireDate]))"#, hire, expect![[r#""3/30/2012 7:00:00 AM""#]]);
    check(r#"DateAdd("m", 10, CDate([StatusHireDate]))"#, hire, expect![[r#""1/16/2013 7:00:00 AM""#]]);
    check(r#"DateAdd("yyyy", 2, CDate([StatusHireDate]))"#, hire, expect![[r#""3/16/2014 7:00:00 AM""#]]);
    // Decision: month arithmetic clamps like .NET AddMonths; strings get an implicit CDate.
    check(r#"DateAdd("m", 1, "2021-01-31")"#, "{}", expect![[r#""2/28/2021 12:00:00 AM""#]]);
    check(
        r#"DateAdd("q", 1, "2021-01-31")"#,
        "{}",
        expect![[r#"error: function 'DateAdd' at 1:1: interval 'q' is not one of yyyy, m, d, ww, h, n, s"#]],
    );
}

#[test]
fn date_diff_table() {
    check(r#"DateDiff("d", CDate("2021-08-18+08:00"), CDate("2021-08-31+08:00"))"#, "{}", expect![[r#""13""#]]);
    let rows = [("d", "-3449"), ("ww", "-493"), ("m", "-113"), ("yyyy", "-9")];
    let mut actual = String::new();
    for (interval, _) in rows {
        let source = format!(r#"DateDiff("{interval}", CDate("8/25/2021 5:41:18 PM"), CDate("2012-03-16-07:00"))"#);
        actual.push_str(&format!("{interval}: {}\n", evaluate(&source, "{}", &[])));
    }
    expect![[r#"
        d: "-3449"
        ww: "-493"
        m: "-113"
        yyyy: "-9"
    "#]]
    .assert_eq(&actual);
    check(r#"DateDiff("d", CDate("2021-08-31+08:00"), CDate("2021-08-31+08:00"))"#, "{}", expect![[r#""0""#]]);
    check(
        r#"Join("/", DateDiff("h", "2021-08-24", "2021-08-25"), DateDiff("n", "2021-08-24", "2021-08-25"), DateDiff("s", "2021-08-24", "2021-08-25"))"#,
        "{}",
        expect![[r#""24/1440/86400""#]],
    );
}

#[test]
fn date_diff_example_2_switch_on_active() {
    let source = r#"Switch([Active], , "1", IIF(DateDiff("d", Now(), CDate([StatusHireDate])) > 5, "False", "True"), "0", "False")"#;
    check(source, r#"{"Active": "1", "StatusHireDate": "2021-07-20"}"#, expect![[r#""False""#]]);
    check(source, r#"{"Active": "1", "StatusHireDate": "2021-07-05"}"#, expect![[r#""True""#]]);
    check(source, r#"{"Active": "0", "StatusHireDate": "2021-07-05"}"#, expect![[r#""False""#]]);
    check(source, r#"{"Active": "7"}"#, expect!["null"]);
}

#[test]
fn date_from_num_and_num_from_date() {
    check("DateFromNum(129699324000000000)", "{}", expect![[r#""1/1/2012 11:00:00 PM""#]]);
    check(r#"NumFromDate("2020-12-31 23:59:59-08:00")"#, "{}", expect![[r#""132539615990000000""#]]);
    check(
        r#"NumFromDate(Join("", FormatDateTime([ContractEndDate], ,"yyyy-MM-ddzzz", "yyyy-MM-dd"), " 23:59:59-08:00"))"#,
        r#"{"ContractEndDate": "2020-12-31-08:00"}"#,
        expect![[r#""132539615990000000""#]],
    );
    check(
        r#"NumFromDate(Join("", FormatDateTime([endDate], ,"M/d/yyyy hh:mm:ss tt", "yyyy-MM-dd"), " 23:59:59-08:00"))"#,
        r#"{"endDate": "12/31/2020 12:00:00 AM"}"#,
        expect![[r#""132539615990000000""#]],
    );
}

#[test]
fn format_date_time() {
    check(
        r#"FormatDateTime([extensionAttribute1], , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")"#,
        r#"{"extensionAttribute1": "20150123105347.1Z"}"#,
        expect![[r#""2015-01-23""#]],
    );
    // Decision: a parsed offset converts to UTC before formatting.
    check(
        r#"FormatDateTime([d], , "yyyy-MM-ddTHH:mm:sszzz", "yyyy-MM-dd")"#,
        r#"{"d": "2020-12-31T20:00:00-08:00"}"#,
        expect![[r#""2021-01-01""#]],
    );
    // The legacy 3-argument form (Cloud Sync).
    check(r#"FormatDateTime([d], "yyyyMMdd", "MM/dd/yyyy")"#, r#"{"d": "20210102"}"#, expect![[r#""01/02/2021""#]]);
    check(
        r#"FormatDateTime([d], "32", "yyyyMMdd", "dddd d MMMM yy, h:mm tt")"#,
        r#"{"d": " 20210102 "}"#,
        expect![[r#""Saturday 2 January 21, 12:00 AM""#]],
    );
    check(
        r#"FormatDateTime([d], , "yyyyMMdd", "yyyy")"#,
        r#"{"d": "2021-01-02"}"#,
        expect![[r#"error: function 'FormatDateTime' at 1:1: '2021-01-02' does not match the format 'yyyyMMdd'"#]],
    );
    check(r#"FormatDateTime([missing], , "yyyyMMdd", "yyyy")"#, "{}", expect!["null"]);
}

#[test]
fn guid_and_random_string_are_reproducible() {
    check("Guid()", "{}", expect![[r#""bdd73226-2feb-4e95-a8ef-e333b266f103""#]]);
    check("RandomString(6, 3, 0, 0, 3)", "{}", expect![[r#""3u8uq1""#]]);
    check(
        r#"RandomString(8, 2, 2, 2, 2, "0123456789")"#,
        "{}",
        expect!["error: function 'RandomString' at 1:1: CharactersToAvoid removes a whole required character class"],
    );
    check(
        "RandomString(300, 1, 1, 1, 1)",
        "{}",
        expect!["error: function 'RandomString' at 1:1: Length 300 is over the limit of 256"],
    );
    check(
        "RandomString(3, 1, 1, 1, 1)",
        "{}",
        expect!["error: function 'RandomString' at 1:1: Length 3 is less than the sum of the minimums (4)"],
    );
    // F's example 2: at least 2 digits, 2 specials, 2 capitals, 1 lower case, never '?' or ','.
    check(r#"RandomString(10,2,2,2,1,"?,")"#, "{}", expect![[r#""U\"R13{UxC<""#]]);
    check(
        "RandomString(5, 9223372036854775807, 9223372036854775807, 0, 0)",
        "{}",
        expect![
            "error: function 'RandomString' at 1:1: Length 5 is less than the sum of the minimums (9223372036854775807)"
        ],
    );
    check(
        r#"DateAdd("m", 9223372036854775807, "2021-01-31")"#,
        "{}",
        expect!["error: function 'DateAdd' at 1:1: the result is out of the supported date range"],
    );
}

#[test]
fn ignore_flow_if_null_or_empty() {
    check("IgnoreFlowIfNullOrEmpty([department])", "{}", expect!["ignore flow"]);
    check("IgnoreFlowIfNullOrEmpty([department])", r#"{"department": ""}"#, expect!["ignore flow"]);
    check("IgnoreFlowIfNullOrEmpty([department])", r#"{"department": " "}"#, expect![[r#"" ""#]]);
    let prefix =
        r#"IgnoreFlowIfNullOrEmpty(Switch([prefix], "", "3443", "Dr.", "3444", "Prof.", "3445", "Prof. Dr."))"#;
    check(prefix, r#"{"prefix": "3444"}"#, expect![[r#""Prof.""#]]);
    check(prefix, r#"{"prefix": "9999"}"#, expect!["ignore flow"]);
}

#[test]
fn iif() {
    let source = r#"IIF([country]="USA",[country],[departmentName])"#;
    check(source, r#"{"country": "USA", "departmentName": "Sales"}"#, expect![[r#""USA""#]]);
    check(source, r#"{"country": "FR", "departmentName": "Sales"}"#, expect![[r#""Sales""#]]);
    // Documented limitation: a null or empty attribute in the condition fails (Decision: an error).
    check(
        r#"IIF([country]="","Other",[country])"#,
        r#"{"country": ""}"#,
        expect![[
            r#"error: function 'IIF' at 1:1: the condition reads [country], which is null or empty (IIF can't test empty attributes; use Switch([country], ...) instead)"#
        ]],
    );
    check(
        r#"IIF(IsPresent([country]),[country],"Other")"#,
        "{}",
        expect![[
            r#"error: function 'IIF' at 1:1: the condition reads [country], which is null or empty (IIF can't test empty attributes; use Switch([country], ...) instead)"#
        ]],
    );
    // The documented workaround.
    check(r#"Switch([country],[country],"","Other")"#, "{}", expect![[r#""Other""#]]);
    check(r#"Switch([country],[country],"","Other")"#, r#"{"country": "FR"}"#, expect![[r#""FR""#]]);
    // Decision (ambiguous): branches are lazy, so Error() in the untaken branch does not fire.
    check(
        r#"IIF(IsPresent([accountName]),[accountName],Error("AccountName is required"))"#,
        r#"{"accountName": "jdoe"}"#,
        expect![[r#""jdoe""#]],
    );
    check(
        r#"IIF([a] = "x", "yes", Error("boom"))"#,
        r#"{"a": "y"}"#,
        expect![[r#"error: Error("boom") raised at 1:23"#]],
    );
    check(r#"IIF([n] >= 10, "big", "small")"#, r#"{"n": "9"}"#, expect![[r#""small""#]]);
}

#[test]
fn in_str() {
    check(r#"InStr("The quick brown fox","quick")"#, "{}", expect![[r#""5""#]]);
    check(r#"InStr("repEated","e",3,vbBinaryCompare)"#, "{}", expect![[r#""7""#]]);
    check(r#"InStr("repEated","e",3,vbTextCompare)"#, "{}", expect![[r#""4""#]]);
    check(r#"InStr("abc","z")"#, "{}", expect![[r#""0""#]]);
    check(r#"InStr("abc","",2)"#, "{}", expect![[r#""2""#]]);
    check(
        r#"InStr("abc","a",0)"#,
        "{}",
        expect!["error: function 'InStr' at 1:1: start 0 is before the first character (InStr is 1-based)"],
    );
    check(r#"InStr([missing],"a")"#, "{}", expect!["null"]);
}

#[test]
fn null_tests() {
    let row = |source: &str, json: &str| evaluate(source, json, &[]);
    let mut actual = String::new();
    for json in [r#"{}"#, r#"{"x": ""}"#, r#"{"x": "a"}"#, r#"{"x": []}"#, r#"{"x": ["a"]}"#, r#"{"x": 5}"#] {
        actual.push_str(&format!(
            "{json}: IsNull={} IsNullOrEmpty={} IsPresent={} IsString={}\n",
            row("IsNull([x])", json),
            row("IsNullOrEmpty([x])", json),
            row("IsPresent([x])", json),
            row("IsString([x])", json),
        ));
    }
    expect![[r#"
        {}: IsNull="True" IsNullOrEmpty="True" IsPresent="False" IsString="False"
        {"x": ""}: IsNull="False" IsNullOrEmpty="True" IsPresent="False" IsString="True"
        {"x": "a"}: IsNull="False" IsNullOrEmpty="False" IsPresent="True" IsString="True"
        {"x": []}: IsNull="False" IsNullOrEmpty="True" IsPresent="False" IsString="False"
        {"x": ["a"]}: IsNull="False" IsNullOrEmpty="False" IsPresent="True" IsString="False"
        {"x": 5}: IsNull="False" IsNullOrEmpty="False" IsPresent="True" IsString="True"
    "#]]
    .assert_eq(&actual);
}

#[test]
fn is_present_switch_mim_example_is_ambiguous() {
    // F copied this from MIM's Switch(condition, value, ...); with Entra's signature the source is
    // "True"/"False" and the default is [directManager].
    let source = r#"Switch(IsPresent([directManager]),[directManager], IsPresent([skiplevelManager]),[skiplevelManager], IsPresent([director]),[director])"#;
    check(source, r#"{"directManager": "m1", "skiplevelManager": "m2"}"#, expect![[r#""m2""#]]);
}

#[test]
fn join() {
    check(r#"Join(", ", "", [surname], [givenName])"#, JOHN, expect![[r#""Doe, John""#]]);
    check(r#"Join("", 1000, [n])"#, r#"{"n": "7"}"#, expect![[r#""10007""#]]);
    check(
        r#"Join(",", [proxyAddresses], [middleName], "x")"#,
        JOHN,
        expect![[r#""SMTP:john@contoso.com,smtp:jd@contoso.com,smtp:john@contoso.com,x""#]],
    );
    check(r#"Join(",", [a], [b])"#, "{}", expect![[r#""""#]]);
}

#[test]
fn left_mid_word() {
    check(r#"Left("John Doe", 3)"#, "{}", expect![[r#""Joh""#]]);
    check(r#"Left("John Doe", 0)"#, "{}", expect![[r#""""#]]);
    check(r#"Left("John Doe", -1)"#, "{}", expect![[r#""John Doe""#]]);
    check(r#"Left("John Doe", 30)"#, "{}", expect![[r#""John Doe""#]]);
    check("Left([missing], 3)", "{}", expect![[r#""""#]]);
    check(r#"Mid("John Doe", 3, 5)"#, "{}", expect![[r#""hn Do""#]]);
    check(r#"Mid("John Doe", 7, 5)"#, "{}", expect![[r#""oe""#]]);
    check(r#"Mid("John Doe", 20, 5)"#, "{}", expect![[r#""""#]]);
    check(
        r#"Mid("John Doe", 0, 5)"#,
        "{}",
        expect!["error: function 'Mid' at 1:1: start 0 is before the first character (Mid is 1-based)"],
    );
    check("Mid([missing], 1, 5)", "{}", expect!["null"]);
    check(r#"Word("The quick brown fox",3," ")"#, "{}", expect![[r#""brown""#]]);
    check(r#"Word("This,string!has&many separators",3,",!&#")"#, "{}", expect![[r#""has""#]]);
    check(r#"Word("a,,b",2,",")"#, "{}", expect![[r#""b""#]]);
    check(r#"Word("abc",2,",")"#, "{}", expect![[r#""""#]]);
    check(r#"Word("abc",0,",")"#, "{}", expect![[r#""""#]]);
    check(r#"Word([missing],1,",")"#, "{}", expect![[r#""""#]]);
}

#[test]
fn normalize_diacritics() {
    check("NormalizeDiacritics([givenName])", r#"{"givenName": "Zoë"}"#, expect![[r#""Zoe""#]]);
    check(
        r#"NormalizeDiacritics("Ærøskøbing Œuvre straße Łódź İzmir ı ā́ a̱ ø̄ ǣ đ")"#,
        "{}",
        expect![[r#""AEroeskoebing OEuvre strasse Lodz Izmir i a a oe ae đ""#]],
    );
}

#[test]
fn not_and_now() {
    check("Not([IsActive])", r#"{"IsActive": "True"}"#, expect![[r#""False""#]]);
    check("Not([IsActive])", r#"{"IsActive": "False"}"#, expect![[r#""True""#]]);
    check("Not([IsActive])", r#"{"IsActive": true}"#, expect![[r#""False""#]]);
    check("Not([missing])", "{}", expect![[r#""True""#]]);
    check("Now()", "{}", expect![[r#""7/2/2021 3:33:38 PM""#]]);
}

#[test]
fn pcase() {
    check(r#"PCase("PABLO GONSALVES (SECOND)")"#, "{}", expect![[r#""Pablo Gonsalves (Second)""#]]);
    check(r#"PCase("PINTO-DE'SILVA"," '-")"#, "{}", expect![[r#""Pinto-De'Silva""#]]);
    check(r#"PCase(Join(" ","GREGORY","JAMES"))"#, "{}", expect![[r#""Gregory James""#]]);
    check(r#"PCase("3RD floor")"#, "{}", expect![[r#""3rd Floor""#]]);
    // Ambiguous: .NET ToTitleCase treats the apostrophe specially; the spec makes it a separator.
    check(r#"PCase("O'NEIL")"#, "{}", expect![[r#""O'Neil""#]]);
}

#[test]
fn redact_remove_duplicates_single_app_role() {
    check("Redact([givenName])", JOHN, expect![[r#""John""#]]);
    check("RemoveDuplicates([x])", r#"{"x": ["a", "b", "a", "A"]}"#, expect![[r#"["a","b","A"]"#]]);
    check("RemoveDuplicates([givenName])", JOHN, expect![[r#"["John"]"#]]);
    check(
        "SingleAppRoleAssignment([appRoleAssignments])",
        r#"{"appRoleAssignments": ["Default Assignment", "Admin"]}"#,
        expect![[r#""Default Assignment""#]],
    );
    check(
        "AppRoleAssignmentsComplex([appRoleAssignments])",
        r#"{"appRoleAssignments": ["Admin"]}"#,
        expect![[r#"["Admin"]"#]],
    );
}

#[test]
fn replace_modes() {
    check(
        r#"Replace([BusinessTitle],"Product Developer", , , "Software Engineer", , )"#,
        r#"{"BusinessTitle": "Senior Product Developer"}"#,
        expect![[r#""Senior Software Engineer""#]],
    );
    check(
        r#"Replace([mail], "@contoso.com", , ,"", ,)"#,
        r#"{"mail": "john.doe@contoso.com"}"#,
        expect![[r#""john.doe""#]],
    );
    check(
        r#"Replace([preferredLanguage], "-", , , "_", , )"#,
        r#"{"preferredLanguage": "EN-US"}"#,
        expect![[r#""EN_US""#]],
    );
    check(
        r#"Replace([UserID],"<username>", , , , , "<username>@contoso.com")"#,
        r#"{"UserID": "jsmith"}"#,
        expect![[r#""jsmith@contoso.com""#]],
    );
    check(
        r#"Replace([telephoneNumber], , "\\+(?<isdCode>\\d* )(?<phoneNumber>\\d{10})", , "${phoneNumber}", , )"#,
        r#"{"telephoneNumber": "+91 9998887777"}"#,
        expect![[r#""9998887777""#]],
    );
    check(r#"Replace([userName], , "[a-zA-Z_]*", , "", , )"#, r#"{"userName": "john_doe72"}"#, expect![[r#""72""#]]);
    check(
        r#"Replace([address], , "(?<streetNumber>^\\d*)", "streetNumber", "888", , )"#,
        r#"{"address": "545 Tremont Street"}"#,
        expect![[r#""888 Tremont Street""#]],
    );
    check(
        r#"Replace([mail], , "(?<Suffix>@(.)*)", "Suffix", "", , )"#,
        r#"{"mail": "jsmith@contoso.com"}"#,
        expect![[r#""jsmith""#]],
    );
    check(
        r#"Replace([telephoneNumber], , "\\+(?<isdCode>\\d* )(?<phoneNumber>\\d{10})", "phoneNumber", , [mobile], )"#,
        r#"{"telephoneNumber": "", "mobile": "+91 8887779999"}"#,
        expect![[r#""8887779999""#]],
    );
    check(
        r#"Replace([telephoneNumber], , "\\+(?<isdCode>\\d* )(?<phoneNumber>\\d{10})", "phoneNumber", , [mobile], )"#,
        r#"{"telephoneNumber": "+1 555", "mobile": "+91 8887779999"}"#,
        expect![[r#""+1 555""#]],
    );
    // Doc erratum (ambiguous): the doc prints 19998887777, but the class has no '+'.
    check(
        r#"Replace([mobile], , "[()\\s-]+", , "", , )"#,
        r#"{"mobile": "+1 (999) 888-7777"}"#,
        expect![[r#""+19998887777""#]],
    );
    check(r#"Replace([x], , "(?<n>a)", , "<$1|${n}|$$>", , )"#, r#"{"x": "bab"}"#, expect![[r#""b<a|a|$>b""#]]);
    check(r#"Replace([missing], "a", , , "b", , )"#, "{}", expect!["null"]);
}

#[test]
fn replace_validation() {
    check(
        r#"Replace([x], "a", "b", , "c", , )"#,
        "{}",
        expect![
            "parse error: Replace needs oldValue with replacementValue or template, or regexPattern with replacementValue, regexGroupName + replacementValue, or regexGroupName + replacementAttributeName at 1:1"
        ],
    );
    check(
        r#"Replace([x], "a", , , "c")"#,
        "{}",
        expect![
            "parse error: function 'Replace' at 1:1 takes 7 arguments (write omitted ones as empty slots), found 5"
        ],
    );
    check(
        r#"Replace([x], , "(?<=a)b", , "c", , )"#,
        "{}",
        expect![[
            r#"parse error: regular expression "(?<=a)b" uses a look-behind (?<=...), which this engine does not support (it only runs linear-time regular expressions) at 1:16"#
        ]],
    );
    check(
        r#"Replace([x], , "(a)\\1", , "c", , )"#,
        "{}",
        expect![[
            r#"parse error: regular expression "(a)\\1" uses a back-reference (\1 ... \9), which this engine does not support (it only runs linear-time regular expressions) at 1:16"#
        ]],
    );
    check(
        r#"Replace([x], , "(", , "c", , )"#,
        "{}",
        expect![[r#"parse error: invalid regular expression "(": unclosed group at 1:16"#]],
    );
    check(
        r#"Replace([x], , [pattern], , "c", , )"#,
        r#"{"x": "aaa", "pattern": "(?=a)"}"#,
        expect![[
            r#"error: regular expression "(?=a)" uses a look-ahead (?=...), which this engine does not support (it only runs linear-time regular expressions) at 1:1"#
        ]],
    );
}

#[test]
fn select_unique_value() {
    let source = r#"SelectUniqueValue( 
    Join("@", NormalizeDiacritics(StripSpaces(Join(".",  [PreferredFirstName], [PreferredLastName]))), "contoso.com"), 
    Join("@", NormalizeDiacritics(StripSpaces(Join(".",  Mid([PreferredFirstName], 1, 1), [PreferredLastName]))), "contoso.com"),
    Join("@", NormalizeDiacritics(StripSpaces(Join(".",  Mid([PreferredFirstName], 1, 2), [PreferredLastName]))), "contoso.com")
)"#;
    let user = r#"{"PreferredFirstName": "John", "PreferredLastName": "Smith"}"#;
    check_with(source, user, &[], expect![[r#""John.Smith@contoso.com""#]]);
    check_with(source, user, &["john.smith@contoso.com"], expect![[r#""J.Smith@contoso.com""#]]);
    check_with(
        source,
        user,
        &["John.Smith@contoso.com", "J.Smith@contoso.com"],
        expect![[r#""Jo.Smith@contoso.com""#]],
    );
    check_with(
        source,
        user,
        &["John.Smith@contoso.com", "J.Smith@contoso.com", "Jo.Smith@contoso.com"],
        expect!["error: SelectUniqueValue at 1:1: all 3 candidate values already exist in the target"],
    );
    check(
        r#"Join("", SelectUniqueValue("a", "b"))"#,
        "{}",
        expect!["parse error: SelectUniqueValue must be the top-level function at 1:10"],
    );
    check(
        r#"SelectUniqueValue("a")"#,
        "{}",
        expect!["parse error: function 'SelectUniqueValue' at 1:1 takes at least 2 arguments, found 1"],
    );
    check(r#"SelectUniqueValue([missing], "b")"#, "{}", expect![[r#""b""#]]);
}

#[test]
fn split_strip_switch_case() {
    check(
        r#"Split("PermissionSetOne, PermissionSetTwo", ",")"#,
        "{}",
        expect![[r#"["PermissionSetOne","PermissionSetTwo"]"#]],
    );
    check(r#"Split([missing], ",")"#, "{}", expect!["null"]);
    check(r#"StripSpaces(" a b	c ")"#, "{}", expect![[r#""ab\tc""#]]);
    let switch = r#"Switch([state], "Australia/Sydney", "NSW", "Australia/Sydney","QLD", "Australia/Brisbane", "SA", "Australia/Adelaide")"#;
    check(switch, r#"{"state": "QLD"}"#, expect![[r#""Australia/Brisbane""#]]);
    check(switch, r#"{"state": "qld"}"#, expect![[r#""Australia/Sydney""#]]);
    check(r#"switch(ToLower([state]), "?", "qld", "Brisbane")"#, r#"{"state": "QLD"}"#, expect![[r#""Brisbane""#]]);
    check(r#"Switch([BusinessTitle],[BusinessTitle],"","N/A")"#, "{}", expect![[r#""N/A""#]]);
    check(
        r#"Switch([a], "d", "k")"#,
        "{}",
        expect!["parse error: function 'Switch' at 1:1 takes an even number of arguments, at least 4, found 3"],
    );
    check(
        r#"Switch(IsPresent([jobTitle]), "DefaultValue", "True", [jobTitle])"#,
        r#"{"jobTitle": "Engineer"}"#,
        expect![[r#""Engineer""#]],
    );
    check(r#"Switch(IsPresent([jobTitle]), "DefaultValue", "True", [jobTitle])"#, "{}", expect![[r#""DefaultValue""#]]);
    check(r#"ToLower("TEST Straße")"#, "{}", expect![[r#""test straße""#]]);
    check(r#"ToUpper("test straße")"#, "{}", expect![[r#""TEST STRAßE""#]]);
    check(r#"ToUpper("istanbul ı", "tr-TR")"#, "{}", expect![[r#""İSTANBUL I""#]]);
    check(r#"ToLower("ISTANBUL İ", "tr-TR")"#, "{}", expect![[r#""ıstanbul i""#]]);
    check(
        "ToLower([proxyAddresses])",
        JOHN,
        expect![[r#"["smtp:john@contoso.com","smtp:jd@contoso.com","smtp:john@contoso.com"]"#]],
    );
}

#[test]
fn cloud_sync_functions() {
    // Cloud Sync only (ambiguous availability in app provisioning).
    check("Trim([x])", r#"{"x": ["  a ", "b  "]}"#, expect![[r#"["a","b"]"#]]);
    check(
        "DNComponent([dn], 1)",
        r#"{"dn": "CN=Doe\\, John,OU=Sales,DC=contoso,DC=com"}"#,
        expect![[r#""Doe\\, John""#]],
    );
    check("DNComponent([dn], 2)", r#"{"dn": "CN=Doe\\, John,OU=Sales,DC=contoso,DC=com"}"#, expect![[r#""Sales""#]]);
    check(
        "StringFromSid([objectSid])",
        r#"{"objectSid": "AQUAAAAAAAUVAAAAoGXPfnhLm1/nfIdwUAQAAA=="}"#,
        expect![[r#""S-1-5-21-2127521184-1604012920-1887927527-1104""#]],
    );
    check(
        r#"Error("AccountName is required")"#,
        "{}",
        expect![[r#"error: Error("AccountName is required") raised at 1:1"#]],
    );
}

#[test]
fn alt_sec_id_from_net_id() {
    check(
        "AltSecIdFromNetId([netId])",
        r#"{"netId": "6f7a2d3e-1b2c-4d5e-8f90-a1b2c3d4e5f6"}"#,
        expect![[
            r#"[{"identityProvider":"11111111-2222-3333-4444-555555555555","key":"NmY3YTJkM2UtMWIyYy00ZDVlLThmOTAtYTFiMmMzZDRlNWY2","type":6}]"#
        ]],
    );
    check("AltSecIdFromNetId([netId])", "{}", expect!["null"]);
}

#[test]
fn syntax_and_validation_errors() {
    check(
        r#"Jion(", ", [a], [b])"#,
        "{}",
        expect!["parse error: unknown function 'Jion' at 1:1 (did you mean 'Join'?)"],
    );
    check(
        r#"Append([a],
  Frobnicate("x"))"#,
        "{}",
        expect!["parse error: unknown function 'Frobnicate' at 2:3"],
    );
    check(r#"Left("x")"#, "{}", expect!["parse error: function 'Left' at 1:1 takes 2 arguments, found 1"]);
    check("Now(1)", "{}", expect!["parse error: function 'Now' at 1:1 takes no arguments, found 1"]);
    check(
        r#"Append('a', "b")"#,
        "{}",
        expect!["parse error: single-quoted strings are not supported; use double quotes at 1:8"],
    );
    check(
        r#"Append([a] & "b")"#,
        "{}",
        expect!["parse error: '&' concatenation is not supported; use Join(\"\", ...) at 1:12"],
    );
    check(r#"Append([a], "b") x"#, "{}", expect!["parse error: expected end of expression, found 'x' at 1:18"]);
    check(r#"Append([a], "b"#, "{}", expect!["parse error: unterminated string at 1:13"]);
    check(
        r#"InStr("a", "b", 1, vbTextCompar)"#,
        "{}",
        expect!["parse error: unknown identifier 'vbTextCompar' at 1:20 (did you mean 'vbTextCompare'?)"],
    );
    check(r#"IIF([a]="x" AND [b]="y", 1, 2)"#, "{}", expect!["parse error: expected ',' or ')', found 'A' at 1:13"]);
    check("", "{}", expect!["parse error: expected an argument, found end of input at 1:1"]);
    let long = format!(r#""{}""#, "x".repeat(10_000));
    check(&long, "{}", expect!["parse error: expression is 10002 characters long, the limit is 10000"]);
    let nested = format!("{}[a]{}", "ToLower(".repeat(70), ")".repeat(70));
    check(&nested, "{}", expect!["parse error: expression nests more than 64 calls at 1:513"]);
}

#[test]
fn top_level_values_and_escapes() {
    check("[givenName]", JOHN, expect![[r#""John""#]]);
    check(r#""Company name: \"Contoso\"""#, "{}", expect![[r#""Company name: \"Contoso\"""#]]);
    check(r#""a\\b\d""#, "{}", expect![[r#""a\\b\\d""#]]);
    check("-12", "{}", expect![[r#""-12""#]]);
    check("1.50", "{}", expect![[r#""1.5""#]]);
    check("[DisplayName]", r#"{"displayName": "case-insensitive bag"}"#, expect![[r#""case-insensitive bag""#]]);
}

#[test]
fn printed_expressions_parse_back() {
    for source in [
        r#"Replace([x], , "re", , "", , )"#,
        r#"FormatDateTime([x], , "in", "out")"#,
        r#"IIF([country]="USA",[country],[departmentName])"#,
        r#"switch([a], , "k\"q\\", &H1f, "v", -3.25)"#,
        r#"InStr("a", "b", 1, vbtextcompare)"#,
    ] {
        let mapping = parse_mapping(source).unwrap();
        let printed = mapping.to_string();
        assert_eq!(parse_mapping(&printed).unwrap(), mapping, "{source} printed as {printed}");
    }
    expect![[r#"Switch([a], , "k\"q\\", &H1f, "v", -3.25)"#]]
        .assert_eq(&parse_mapping(r#"switch( [a] ,, "k\"q\\",&H1f,"v",-3.25 )"#).unwrap().to_string());
}

#[test]
fn attribute_names_are_listed() {
    let mapping = parse_mapping(r#"Join(" ", [givenName], [surname], [givenName])"#).unwrap();
    assert_eq!(mapping.attribute_names(), ["givenName", "surname"]);
}

#[test]
fn more_documented_examples() {
    // IIF: AND and OR by nesting (F, known limitations).
    let and = r#"IIF([country]="USA",IIF([state]="CA","True","False"),"False")"#;
    check(and, r#"{"country": "USA", "state": "CA"}"#, expect![[r#""True""#]]);
    check(and, r#"{"country": "USA", "state": "WA"}"#, expect![[r#""False""#]]);
    let or = r#"IIF([country]="USA","True",IIF([state]="CA","True","False"))"#;
    check(or, r#"{"country": "FR", "state": "CA"}"#, expect![[r#""True""#]]);
    check(or, r#"{"country": "FR", "state": "WA"}"#, expect![[r#""False""#]]);
    // Switch notes and the IIF rewrite F recommends instead of Switch.
    check(
        r#"Switch(ToLower([statusFlag]), "0", "true", "1", "false", "0")"#,
        r#"{"statusFlag": "TRUE"}"#,
        expect![[r#""1""#]],
    );
    check(
        r#"Switch([statusFlag], "Default Value", "true", "1", "", "0")"#,
        r#"{"statusFlag": ""}"#,
        expect![[r#""0""#]],
    );
    check(r#"Switch([statusFlag], "Default Value", "true", "1", "", "0")"#, "{}", expect![[r#""0""#]]);
    let rewrite = r#"IIF([companyName] = "Company A", "A", IIF([companyName] = "Company B", "B", "External"))"#;
    check(rewrite, r#"{"companyName": "Company B"}"#, expect![[r#""B""#]]);
    check(rewrite, r#"{"companyName": "Company C"}"#, expect![[r#""External""#]]);
    // ToLower of a generated UPN; alias from parts of the names.
    let upn = r#"ToLower(Join("@", NormalizeDiacritics(StripSpaces(Join(".",  [PreferredFirstName], [PreferredLastName]))), "contoso.com"))"#;
    check(
        upn,
        r#"{"PreferredFirstName": "John", "PreferredLastName": "Smith"}"#,
        expect![[r#""john.smith@contoso.com""#]],
    );
    check(
        upn,
        r#"{"PreferredFirstName": "Jéssica", "PreferredLastName": "Van Der Berg"}"#,
        expect![[r#""jessica.vanderberg@contoso.com""#]],
    );
    check("Append(Mid([givenName], 1, 3), Mid([surname], 1, 5))", JOHN, expect![[r#""JohDoe""#]]);
    check(
        r#"Split([extensionAttribute5], ",")"#,
        r#"{"extensionAttribute5": "PermissionSetOne, PermissionSetTwo"}"#,
        expect![[r#"["PermissionSetOne","PermissionSetTwo"]"#]],
    );
    check(r#"Redact(RandomString(6,3,0,0,3))"#, "{}", expect![[r#""3u8uq1""#]]);
    check(
        "DateFromNum([lastLogonTimestamp])",
        r#"{"lastLogonTimestamp": "129699324000000000"}"#,
        expect![[r#""1/1/2012 11:00:00 PM""#]],
    );
    // Doc erratum: F's sample output for this "Generate an ID" example does not correspond to its input.
    check(
        r#"Join("", 1000, Replace(ConvertToUTF8Hex([objectId]), , "[a-zA-Z_]*", , "", , ))"#,
        r#"{"objectId": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"}"#,
        expect![[r#""100030306161303061612626231312636332322646433332343465653434656534346565""#]],
    );
}

#[test]
fn normalize_diacritics_documented_table() {
    // Every row of F's NormalizeDiacritics table.
    let table: &[(&str, &str)] = &[
        ("ä, à, â, ã, å, á, ą, ă, ā, ā́, ā̀, ā̂, ā̃, ǟ, ā̈, ǡ, a̱, å̄", "a"),
        ("Ä, À, Â, Ã, Å, Á, Ą, Ă, Ā, Ā́, Ā̀, Ā̂, Ā̃, Ǟ, Ā̈, Ǡ, A̱, Å̄", "A"),
        ("æ, ǣ", "ae"),
        ("Æ, Ǣ", "AE"),
        ("ç, č, ć, c̄, c̱", "c"),
        ("Ç, Č, Ć, C̄, C̱", "C"),
        ("ď, d̄, ḏ", "d"),
        ("Ď, D̄, Ḏ", "D"),
        ("ë, è, é, ê, ę, ě, ė, ē, ḗ, ḕ, ē̂, ē̃, ê̄, e̱, ë̄, e̊̄", "e"),
        ("Ë, È, É, Ê, Ę, Ě, Ė, Ē, Ḗ, Ḕ, Ē̂, Ē̃, Ê̄, E̱, Ë̄, E̊̄", "E"),
        ("ğ, ḡ, g̱", "g"),
        ("Ğ, Ḡ, G̱", "G"),
        ("ï, î, ì, í, ı, ī, ī́, ī̀, ī̂, ī̃, i̱", "i"),
        ("Ï, Î, Ì, Í, İ, Ī, Ī́, Ī̀, Ī̂, Ī̃, I̱", "I"),
        ("ľ, ł, l̄, ḹ, ḻ", "l"),
        ("Ł, Ľ, L̄, Ḹ, Ḻ", "L"),
        ("ñ, ń, ň, n̄, ṉ", "n"),
        ("Ñ, Ń, Ň, N̄, Ṉ", "N"),
        ("ö, ò, ő, õ, ô, ó, ō, ṓ, ṑ, ō̂, ō̃, ȫ, ō̈, ǭ, ȭ, ȱ, o̱", "o"),
        ("Ö, Ò, Ő, Õ, Ô, Ó, Ō, Ṓ, Ṑ, Ō̂, Ō̃, Ȫ, Ō̈, Ǭ, Ȭ, Ȱ, O̱", "O"),
        ("ø, ø̄, œ̄", "oe"),
        ("Ø, Ø̄, Œ̄", "OE"),
        ("ř, r̄, ṟ, ṝ", "r"),
        ("Ř, R̄, Ṟ, Ṝ", "R"),
        ("ß", "ss"),
        ("š, ś, ș, ş, s̄, s̱", "s"),
        ("Š, Ś, Ș, Ş, S̄, S̱", "S"),
        ("ť, ț, t̄, ṯ", "t"),
        ("Ť, Ț, T̄, Ṯ", "T"),
        ("ü, ù, û, ú, ů, ű, ū, ū́, ū̀, ū̂, ū̃, u̇̄, ǖ, ṻ, ṳ̄, u̱", "u"),
        ("Ü, Ù, Û, Ú, Ů, Ű, Ū, Ū́, Ū̀, Ū̂, Ū̃, U̇̄, Ǖ, Ṻ, Ṳ̄, U̱", "U"),
        ("ÿ, ý, ȳ, ȳ́, ȳ̀, ȳ̃, y̱", "y"),
        ("Ÿ, Ý, Ȳ, Ȳ́, Ȳ̀, Ȳ̃, Y̱", "Y"),
        ("ź, ž, ż, z̄, ẕ", "z"),
        ("Ź, Ž, Ż, Z̄, Ẕ", "Z"),
    ];
    let mapping = parse_mapping("NormalizeDiacritics([x])").unwrap();
    let clock = FixedClock(datetime!(2021-07-02 15:33:38 UTC));
    let rng = SplitMix64::new(1);
    let ctx = EvalContext::new(&clock, &rng);
    let mut wrong = Vec::new();
    for (characters, expected) in table {
        for character in characters.split(", ") {
            let attributes = Attributes::new().with("x", character);
            let actual = match mapping.evaluate(&attributes, &ctx) {
                Ok(Outcome::Value(value)) => value.render_text().unwrap_or_default(),
                other => format!("{other:?}"),
            };
            if actual != *expected {
                wrong.push(format!("{character} -> {actual} (expected {expected})"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
