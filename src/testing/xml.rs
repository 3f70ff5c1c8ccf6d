//! The `test.xml` forge writes for a test that wrote none: a test's name, time, error and
//! log in; JUnit XML out, laid out as Bazel writes it, so CI systems read both alike.

use std::time::Duration;

/// JUnit XML for one test run. `error` is `None` for a pass.
pub fn generated(name: &str, duration: Duration, error: Option<&str>, log: &str) -> String {
    let name = escape(name);
    let secs = duration.as_secs_f64();
    let (errors, failure) = match error {
        Some(message) => (
            1,
            format!("<error message=\"{}\"></error>", escape(message)),
        ),
        None => (0, String::new()),
    };
    let log = log.strip_suffix('\n').unwrap_or(log);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites>\n  \
         <testsuite name=\"{name}\" tests=\"1\" failures=\"0\" errors=\"{errors}\">\n    \
         <testcase name=\"{name}\" status=\"run\" duration=\"{secs:.3}\" time=\"{secs:.3}\">{failure}</testcase>\n      \
         <system-out>\n\
         Generated test.log (if the file is not UTF-8, then this may be unreadable):\n\
         <![CDATA[{}]]>\n      \
         </system-out>\n    \
         </testsuite>\n\
         </testsuites>\n",
        cdata(log)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A CDATA section cannot hold `]]>`; split it across two sections. Control characters XML
/// forbids are dropped.
fn cdata(text: &str) -> String {
    text.replace("]]>", "]]]]><![CDATA[>")
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_escape_and_cdata_survives_its_terminator() {
        let xml = generated(
            "pkg/t",
            Duration::from_millis(1500),
            Some("exited with error code 1 <&>"),
            "out ]]> \u{1b}[31mred\n",
        );
        assert!(xml.contains("<testsuite name=\"pkg/t\" tests=\"1\" failures=\"0\" errors=\"1\">"));
        assert!(xml.contains("duration=\"1.500\" time=\"1.500\""));
        assert!(xml.contains("message=\"exited with error code 1 &lt;&amp;&gt;\""));
        assert!(xml.contains("<![CDATA[out ]]]]><![CDATA[> [31mred]]>"));
    }
}
