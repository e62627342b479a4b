//! The edit plan (docs/plan.md): parsed from JSON once, then looked up per element.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::dictionary;
use crate::error::{Error, Result};
use crate::fasthash::FastMap;
use crate::keyed::Keys;
use crate::tag::{self, Tag};
use crate::vr::VR;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Keep,
    Remove,
    Empty,
    Replace(String),
    Dummy,
    Uid,
    Pseudonym { prefix: String, source: Option<Tag> },
    ShiftDate,
    Clean,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Keep => "keep",
            Action::Remove => "remove",
            Action::Empty => "empty",
            Action::Replace(_) => "replace",
            Action::Dummy => "dummy",
            Action::Uid => "uid",
            Action::Pseudonym { .. } => "pseudonym",
            Action::ShiftDate => "shift_date",
            Action::Clean => "clean",
        }
    }
}

/// A condition on a top-level element: one of its values is in `values`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    pub tag: Tag,
    pub values: Vec<String>,
}

/// A rule: an action, applied when its condition (if any) holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub when: Option<Cond>,
    pub action: Action,
}

/// Decoded top-level values of a file, read before the rewrite (condition and source tags),
/// trailing padding removed.
pub type TopValues = FastMap<Tag, String>;

impl Cond {
    fn holds(&self, top: &TopValues) -> bool {
        top.get(&self.tag).is_some_and(|v| {
            v.split('\\')
                .any(|x| self.values.iter().any(|w| w == x.trim_matches(' ')))
        })
    }
}

/// The first rule of `rules` whose condition holds.
fn pick<'a>(rules: &'a [Rule], top: &TopValues) -> Option<&'a Action> {
    rules
        .iter()
        .find(|r| r.when.as_ref().is_none_or(|c| c.holds(top)))
        .map(|r| &r.action)
}

/// A new element written into the top-level data set.
#[derive(Clone, Debug)]
pub struct NewElement {
    pub tag: Tag,
    pub vr: VR,
    pub value: String,
    pub items: Vec<Vec<NewElement>>,
}

#[derive(Debug)]
pub struct Plan {
    tags: FastMap<u32, Vec<Rule>>,
    /// (creator, group, element byte) -> rules
    creators: FastMap<(String, u16, u8), Vec<Rule>>,
    creator_groups: HashSet<(String, u16)>,
    keep_creators_with_rules: bool,
    private_default: Vec<Rule>,
    masks: Vec<(u32, u32, Vec<Rule>)>,
    vrs: FastMap<VR, Vec<Rule>>,
    unknown_public: Vec<Rule>,
    default: Vec<Rule>,
    /// Regular expressions masked in cleaned text, after the identifying tokens.
    pub clean_patterns: Vec<regex::Regex>,
    pub dummies: FastMap<VR, String>,
    pub identifying: HashSet<u32>,
    /// (source tag, max days)
    pub date_shift: Option<(Tag, u32)>,
    pub insert: Vec<NewElement>,
    /// Elements inserted into every item of the sequences of a tag, at any depth.
    pub insert_in: FastMap<u32, Vec<NewElement>>,
    pub keys: Keys,
    /// Some rule cleans text: identifying tokens must be collected first.
    pub needs_tokens: bool,
    /// Top-level values the rewrite needs before it starts (pseudonym and date sources).
    pub top_sources: Vec<Tag>,
    /// Nothing in the plan changes anything: the input is returned as it is.
    pub identity: bool,
    pub has_creator_rules: bool,
}

// ---- JSON shape -----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WhenJson {
    tag: String,
    #[serde(rename = "in")]
    values: Vec<String>,
}

/// A rule, or a list of rules tried in order.
#[derive(Deserialize)]
#[serde(untagged)]
enum RulesJson {
    One(RuleJson),
    Many(Vec<RuleJson>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleJson {
    action: String,
    #[serde(default)]
    when: Option<WhenJson>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaskJson {
    mask: String,
    value: String,
    rule: RulesJson,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PrivateJson {
    #[serde(default)]
    creators: HashMap<String, HashMap<String, HashMap<String, RulesJson>>>,
    #[serde(default)]
    creator_elements: Option<String>,
    #[serde(default)]
    default: Option<RulesJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DateShiftJson {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    max_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewElementJson {
    tag: String,
    vr: String,
    /// Insert into every item of every sequence with this tag, at any depth (else: top level).
    #[serde(default, rename = "in")]
    within: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    items: Option<Vec<Vec<NewElementJson>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanJson {
    version: u32,
    #[serde(default)]
    tags: HashMap<String, RulesJson>,
    #[serde(default)]
    private: Option<PrivateJson>,
    #[serde(default)]
    masks: Vec<MaskJson>,
    #[serde(default)]
    vrs: HashMap<String, RulesJson>,
    #[serde(default)]
    unknown_public: Option<RulesJson>,
    #[serde(default)]
    default: Option<RulesJson>,
    #[serde(default)]
    clean_patterns: Vec<String>,
    #[serde(default)]
    dummies: HashMap<String, String>,
    #[serde(default)]
    identifying: Vec<String>,
    #[serde(default)]
    date_shift: Option<DateShiftJson>,
    #[serde(default)]
    insert: Vec<NewElementJson>,
}

fn bad(msg: String) -> Error {
    Error::Plan(msg)
}

fn parse_tag(s: &str) -> Result<Tag> {
    let t = s
        .trim_start_matches('(')
        .trim_end_matches(')')
        .replace(',', "");
    if t.len() != 8 {
        return Err(bad(format!("tag {s:?} is not 8 hex digits")));
    }
    u32::from_str_radix(&t, 16)
        .map(Tag)
        .map_err(|_| bad(format!("tag {s:?} is not hexadecimal")))
}

fn parse_hex32(s: &str) -> Result<u32> {
    u32::from_str_radix(s, 16).map_err(|_| bad(format!("{s:?} is not a 32-bit hex number")))
}

fn parse_vr(s: &str) -> Result<VR> {
    VR::parse(s).ok_or_else(|| bad(format!("unknown VR {s:?}")))
}

fn parse_rules(r: Option<RulesJson>, at: &str) -> Result<Vec<Rule>> {
    let list = match r {
        None => Vec::new(),
        Some(RulesJson::One(r)) => vec![r],
        Some(RulesJson::Many(v)) => v,
    };
    list.into_iter()
        .map(|r| {
            let when = match r.when.as_ref() {
                Some(w) => Some(Cond {
                    tag: parse_tag(&w.tag)?,
                    values: w.values.clone(),
                }),
                None => None,
            };
            Ok(Rule {
                when,
                action: parse_action(r, at)?,
            })
        })
        .collect()
}

fn parse_action(r: RuleJson, at: &str) -> Result<Action> {
    Ok(match r.action.as_str() {
        "keep" => Action::Keep,
        "remove" => Action::Remove,
        "empty" => Action::Empty,
        "replace" => Action::Replace(
            r.value
                .ok_or_else(|| bad(format!("{at}: replace needs a value")))?,
        ),
        "dummy" => Action::Dummy,
        "uid" => Action::Uid,
        "pseudonym" => Action::Pseudonym {
            prefix: r.prefix.unwrap_or_default(),
            source: r.source.as_deref().map(parse_tag).transpose()?,
        },
        "shift_date" => Action::ShiftDate,
        "clean" => Action::Clean,
        other => return Err(bad(format!("{at}: unknown action {other:?}"))),
    })
}

fn parse_new(e: NewElementJson) -> Result<NewElement> {
    let tag = parse_tag(&e.tag)?;
    let vr = parse_vr(&e.vr)?;
    let items = e
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|item| {
            let mut v = item
                .into_iter()
                .map(parse_new)
                .collect::<Result<Vec<_>>>()?;
            v.sort_by_key(|n| n.tag);
            Ok(v)
        })
        .collect::<Result<Vec<_>>>()?;
    if vr == VR::SQ && e.value.is_some() {
        return Err(bad(format!(
            "insert {tag}: a sequence takes items, not a value"
        )));
    }
    Ok(NewElement {
        tag,
        vr,
        value: e.value.unwrap_or_default(),
        items,
    })
}

impl Plan {
    pub fn from_json(text: &str, key: &[u8]) -> Result<Plan> {
        let j: PlanJson = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if j.version != 1 {
            return Err(bad(format!(
                "plan version {} is not supported (1 is)",
                j.version
            )));
        }
        let mut tags = FastMap::default();
        for (t, r) in j.tags {
            let tag = parse_tag(&t)?;
            tags.insert(tag.0, parse_rules(Some(r), &t)?);
        }
        let private = j.private.unwrap_or_default();
        let mut creators = FastMap::default();
        let mut creator_groups = HashSet::new();
        for (creator, groups) in private.creators {
            for (g, elements) in groups {
                let group = u16::from_str_radix(&g, 16)
                    .map_err(|_| bad(format!("private group {g:?} is not hex")))?;
                if group % 2 == 0 {
                    return Err(bad(format!("private group {g} is even")));
                }
                creator_groups.insert((creator.clone(), group));
                for (ee, r) in elements {
                    let byte = u8::from_str_radix(&ee, 16)
                        .map_err(|_| bad(format!("private element byte {ee:?} is not hex")))?;
                    let at = format!("{creator}/{g}/{ee}");
                    creators.insert((creator.clone(), group, byte), parse_rules(Some(r), &at)?);
                }
            }
        }
        let keep_creators_with_rules = match private.creator_elements.as_deref() {
            Some("keep-if-rule") => true,
            None => false,
            Some(o) => return Err(bad(format!("private.creator_elements {o:?} is unknown"))),
        };
        let private_default = parse_rules(private.default, "private.default")?;
        let masks = j
            .masks
            .into_iter()
            .map(|m| {
                let mask = parse_hex32(&m.mask)?;
                let value = parse_hex32(&m.value)?;
                Ok((
                    mask,
                    value,
                    parse_rules(Some(m.rule), &format!("mask {}", m.mask))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut vrs = FastMap::default();
        for (v, r) in j.vrs {
            vrs.insert(parse_vr(&v)?, parse_rules(Some(r), &v)?);
        }
        let unknown_public = parse_rules(j.unknown_public, "unknown_public")?;
        let default = parse_rules(j.default, "default")?;
        let clean_patterns = j
            .clean_patterns
            .iter()
            .map(|p| regex::Regex::new(p).map_err(|e| bad(format!("clean pattern {p:?}: {e}"))))
            .collect::<Result<Vec<_>>>()?;
        let mut dummies = FastMap::default();
        for (v, d) in j.dummies {
            dummies.insert(parse_vr(&v)?, d);
        }
        let identifying = j
            .identifying
            .iter()
            .map(|t| parse_tag(t).map(|t| t.0))
            .collect::<Result<_>>()?;
        let date_shift = j
            .date_shift
            .map(|d| {
                let source = d
                    .source
                    .as_deref()
                    .map(parse_tag)
                    .transpose()?
                    .unwrap_or(tag::PATIENT_ID);
                let max_days = d.max_days.filter(|&m| m >= 1).ok_or_else(|| {
                    bad("date_shift.max_days must be an integer >= 1".to_string())
                })?;
                Ok::<_, Error>((source, max_days))
            })
            .transpose()?;
        let mut insert = Vec::new();
        let mut insert_in: FastMap<u32, Vec<NewElement>> = FastMap::default();
        for e in j.insert {
            let within = e.within.as_deref().map(parse_tag).transpose()?;
            let n = parse_new(e)?;
            match within {
                None => insert.push(n),
                Some(seq) => insert_in.entry(seq.0).or_default().push(n),
            }
        }
        insert.sort_by_key(|n| n.tag);
        for v in insert_in.values_mut() {
            v.sort_by_key(|n| n.tag);
        }
        let all_rules = || {
            tags.values()
                .chain(creators.values())
                .chain(std::iter::once(&private_default))
                .chain(masks.iter().map(|m| &m.2))
                .chain(vrs.values())
                .chain(std::iter::once(&unknown_public))
                .chain(std::iter::once(&default))
                .flatten()
        };
        let needs_tokens = all_rules().any(|r| r.action == Action::Clean);
        let mut top_sources: Vec<Tag> = all_rules()
            .filter_map(|r| match &r.action {
                Action::Pseudonym {
                    source: Some(s), ..
                } => Some(*s),
                _ => None,
            })
            .chain(all_rules().filter_map(|r| r.when.as_ref().map(|c| c.tag)))
            .collect();
        if let Some((s, _)) = date_shift {
            top_sources.push(s);
        }
        top_sources.sort();
        top_sources.dedup();
        if date_shift.is_none() && all_rules().any(|r| r.action == Action::ShiftDate) {
            return Err(bad("a shift_date rule needs date_shift".to_string()));
        }
        let identity = insert.is_empty()
            && insert_in.is_empty()
            && all_rules().all(|r| r.action == Action::Keep);
        let has_creator_rules = !creator_groups.is_empty();
        Ok(Plan {
            tags,
            creators,
            creator_groups,
            keep_creators_with_rules,
            private_default,
            masks,
            vrs,
            unknown_public,
            default,
            clean_patterns,
            dummies,
            identifying,
            date_shift,
            insert,
            insert_in,
            keys: Keys::new(key),
            needs_tokens,
            top_sources,
            identity,
            has_creator_rules,
        })
    }

    /// The rule for an element (docs/plan.md "Which rule applies"). `creator` is the private
    /// creator of the element's block (for private data elements) or its own value (for creator
    /// elements), when the plan has creator rules; `top` holds the values conditions look at.
    pub fn resolve(&self, tag: Tag, vr: VR, creator: Option<&str>, top: &TopValues) -> &Action {
        if let Some(a) = self.tags.get(&tag.0).and_then(|r| pick(r, top)) {
            return a;
        }
        if tag.is_private() {
            if let Some(c) = creator {
                if tag.is_private_creator() {
                    if self.keep_creators_with_rules
                        && self.creator_groups.contains(&(c.to_string(), tag.group()))
                    {
                        return &Action::Keep;
                    }
                } else if let Some(a) = self
                    .creators
                    .get(&(c.to_string(), tag.group(), tag.element() as u8))
                    .and_then(|r| pick(r, top))
                {
                    return a;
                }
            }
            if let Some(a) = pick(&self.private_default, top) {
                return a;
            }
        }
        for (m, v, rules) in &self.masks {
            if tag.0 & m == *v {
                if let Some(a) = pick(rules, top) {
                    return a;
                }
            }
        }
        if let Some(a) = self.vrs.get(&vr).and_then(|r| pick(r, top)) {
            return a;
        }
        if !tag.is_private() && !dictionary::is_known(tag) {
            if let Some(a) = pick(&self.unknown_public, top) {
                return a;
            }
        }
        pick(&self.default, top).unwrap_or(&Action::Keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Plan {
        fn resolve_t(&self, tag: Tag, vr: VR, creator: Option<&str>) -> &Action {
            self.resolve(tag, vr, creator, &TopValues::default())
        }
    }

    #[test]
    fn conditions_fall_through() {
        let p = Plan::from_json(
            r#"{"version":1,"tags":{"00204000":[
                {"action":"keep","when":{"tag":"00080060","in":["US"]}},
                {"action":"remove"}]}}"#,
            b"k",
        )
        .unwrap();
        let mut top = TopValues::default();
        top.insert(Tag(0x0008_0060), "US".into());
        assert_eq!(
            p.resolve(Tag(0x0020_4000), VR::LT, None, &top),
            &Action::Keep
        );
        top.insert(Tag(0x0008_0060), "CT".into());
        assert_eq!(
            p.resolve(Tag(0x0020_4000), VR::LT, None, &top),
            &Action::Remove
        );
        assert_eq!(p.top_sources, vec![Tag(0x0008_0060)]);
    }

    #[test]
    fn precedence() {
        let p = Plan::from_json(
            r#"{"version":1,
                "tags":{"00100010":{"action":"empty"}},
                "private":{"creators":{"ACME":{"0009":{"01":{"action":"keep"}}}},"creator_elements":"keep-if-rule",
                           "default":{"action":"remove"}},
                "masks":[{"mask":"FF00FFFF","value":"60003000","rule":{"action":"remove"}}],
                "vrs":{"UI":{"action":"uid"}},
                "unknown_public":{"action":"remove"}}"#,
            b"k",
        )
        .unwrap();
        assert_eq!(p.resolve_t(Tag(0x0010_0010), VR::PN, None), &Action::Empty);
        assert_eq!(
            p.resolve_t(Tag(0x0009_1001), VR::UN, Some("ACME")),
            &Action::Keep
        );
        assert_eq!(
            p.resolve_t(Tag(0x0009_1002), VR::UN, Some("ACME")),
            &Action::Remove
        );
        assert_eq!(
            p.resolve_t(Tag(0x0009_0010), VR::LO, Some("ACME")),
            &Action::Keep
        );
        assert_eq!(
            p.resolve_t(Tag(0x0009_0010), VR::LO, Some("OTHER")),
            &Action::Remove
        );
        assert_eq!(p.resolve_t(Tag(0x6002_3000), VR::OW, None), &Action::Remove);
        assert_eq!(p.resolve_t(Tag(0x0020_000D), VR::UI, None), &Action::Uid);
        assert_eq!(p.resolve_t(Tag(0x0010_9999), VR::LO, None), &Action::Remove);
        assert_eq!(p.resolve_t(Tag(0x0008_0060), VR::CS, None), &Action::Keep);
        assert!(!p.identity);
        assert!(Plan::from_json(r#"{"version":1}"#, b"").unwrap().identity);
        assert!(Plan::from_json(r#"{"version":2}"#, b"").is_err());
        assert!(
            Plan::from_json(r#"{"version":1,"tags":{"0010":{"action":"keep"}}}"#, b"").is_err()
        );
    }
}
