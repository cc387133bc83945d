//! Reading an OpenMetrics text exposition: samples by name and labels, and
//! the declared type of each metric family.

use std::collections::{BTreeMap, HashMap};

/// Labels of one sample, sorted by name.
type Labels = BTreeMap<String, String>;

/// One scrape of `/metrics`.
#[derive(Debug)]
pub(crate) struct Scrape {
    samples: Vec<(String, Labels, f64)>,
    types: HashMap<String, String>,
    text: String,
}

impl Scrape {
    pub(crate) fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        let mut types = HashMap::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(declaration) = line.strip_prefix("# TYPE ") {
                let (family, kind) = declaration.split_once(' ').expect("`# TYPE name kind`");
                types.insert(family.to_owned(), kind.to_owned());
            } else if !line.starts_with('#') {
                samples.push(sample(line));
            }
        }
        Scrape {
            samples,
            types,
            text: text.to_owned(),
        }
    }

    /// The value of the sample with this name and exactly these labels;
    /// 0 when there is none yet (a labelled counter appears on first use).
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && *l == wanted)
            .map_or(0.0, |(_, _, value)| *value)
    }

    /// The declared type of a metric family (`counter`, `gauge`, ...).
    pub(crate) fn kind(&self, family: &str) -> Option<&str> {
        self.types.get(family).map(String::as_str)
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }
}

/// `name{a="1",b="2"} value`, or `name value`.
fn sample(line: &str) -> (String, Labels, f64) {
    let (series, value) = line.rsplit_once(' ').expect("a sample and its value");
    let value: f64 = value
        .parse()
        .unwrap_or_else(|e| panic!("{value:?} in {line:?}: {e}"));
    let Some((name, labels)) = series.split_once('{') else {
        return (series.to_owned(), Labels::new(), value);
    };
    let labels = labels.strip_suffix('}').expect("labels end with `}`");
    let labels = labels
        .split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, quoted) = pair.split_once('=').expect("label=value");
            let unquoted = quoted.trim_matches('"');
            (key.to_owned(), unquoted.to_owned())
        })
        .collect();
    (name.to_owned(), labels, value)
}
