//! Retention: which backups a target keeps.
//!
//! Rules are applied per source, to the backups (manifests) one target holds,
//! and a backup is kept when any rule keeps it; every decision says which
//! rules kept it. The newest backup of every source is always kept, whatever
//! the policy says. Without a policy everything is kept.
//!
//! Calendar rules (`keep_hourly` … `keep_yearly`) work like restic's: walking
//! from the newest backup back in time, the newest backup of each distinct
//! hour (day, ISO week, month, year) is kept, for the N most recent periods
//! that have a backup. Periods are UTC. `keep_within` keeps every backup
//! younger than the duration, measured from the source's newest backup (not
//! from "now", so backups that stopped do not make old ones expire).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use time::OffsetDateTime;

pub use crate::settings::Policy;

/// One backup as retention sees it.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: String,
    pub source: String,
    pub time: OffsetDateTime,
    pub tags: Vec<String>,
}

impl Item {
    /// A backup as retention sees it, from its manifest header. An
    /// unparseable time sorts as oldest; the newest rule still holds per
    /// source.
    pub fn of(h: &super::manifest::Header) -> Item {
        Item {
            id: h.id.clone(),
            source: h.source.clone(),
            time: crate::clock::parse(&h.started_at)
                .or_else(|| crate::clock::parse(&h.finished_at))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            tags: h.tags.clone(),
        }
    }
}

/// What retention decided about one backup.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Decision {
    pub id: String,
    pub keep: bool,
    /// The rules that kept it (`newest`, `last`, `hourly`, `daily`, `weekly`,
    /// `monthly`, `yearly`, `within`, `tag:NAME`, `no policy`); empty when removed.
    pub reasons: Vec<String>,
}

type PeriodKey = (i32, u32, u32, u32);

fn period(rule: &str, t: OffsetDateTime) -> PeriodKey {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (y, m, d, h) = (t.year(), t.month() as u32, t.day() as u32, t.hour() as u32);
    match rule {
        "hourly" => (y, m, d, h + 1),
        "daily" => (y, m, d, 0),
        "weekly" => {
            let (wy, w, _) = t.to_iso_week_date();
            (wy, 0, w as u32, 0)
        }
        "monthly" => (y, m, 0, 0),
        _ => (y, 0, 0, 0),
    }
}

/// Decides keep/remove for every item, in the order given.
pub fn apply(policy: Option<&Policy>, items: &[Item]) -> Vec<Decision> {
    let mut reasons: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let Some(policy) = policy else {
        return items
            .iter()
            .map(|i| Decision {
                id: i.id.clone(),
                keep: true,
                reasons: vec!["no policy".into()],
            })
            .collect();
    };
    let mut by_source: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (n, i) in items.iter().enumerate() {
        by_source.entry(i.source.as_str()).or_default().push(n);
    }
    for idx in by_source.values_mut() {
        // Newest first; the id breaks ties so the result is deterministic.
        idx.sort_by(|a, b| {
            items[*b]
                .time
                .cmp(&items[*a].time)
                .then_with(|| items[*b].id.cmp(&items[*a].id))
        });
        let mut add = |n: usize, why: &str| {
            reasons.entry(n).or_default().insert(why.to_string());
        };
        add(idx[0], "newest");
        if let Some(k) = policy.keep_last {
            for &n in idx.iter().take(k as usize) {
                add(n, "last");
            }
        }
        for (rule, count) in [
            ("hourly", policy.keep_hourly),
            ("daily", policy.keep_daily),
            ("weekly", policy.keep_weekly),
            ("monthly", policy.keep_monthly),
            ("yearly", policy.keep_yearly),
        ] {
            let Some(count) = count else { continue };
            let mut last: Option<PeriodKey> = None;
            let mut kept = 0;
            for &n in idx.iter() {
                if kept >= count {
                    break;
                }
                let key = period(rule, items[n].time);
                if last != Some(key) {
                    add(n, rule);
                    kept += 1;
                    last = Some(key);
                }
            }
        }
        if let Some(within) = policy.keep_within {
            let newest = items[idx[0]].time;
            for &n in idx.iter() {
                if newest - items[n].time <= within {
                    add(n, "within");
                }
            }
        }
        for &n in idx.iter() {
            for t in &items[n].tags {
                if policy.keep_tags.contains(t) {
                    add(n, &format!("tag:{t}"));
                }
            }
        }
    }
    items
        .iter()
        .enumerate()
        .map(|(n, i)| {
            let r: Vec<String> = reasons
                .remove(&n)
                .map(|s| s.into_iter().collect())
                .unwrap_or_default();
            Decision {
                id: i.id.clone(),
                keep: !r.is_empty(),
                reasons: r,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use time::macros::datetime;

    fn item(id: &str, source: &str, t: OffsetDateTime, tags: &[&str]) -> Item {
        Item {
            id: id.into(),
            source: source.into(),
            time: t,
            tags: tags.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Four backups a day (00, 06, 12, 18 UTC) for 60 days, ending 2026-03-01 18:00.
    fn history() -> Vec<Item> {
        let end = datetime!(2026-03-01 18:00 UTC);
        (0..240)
            .map(|n| {
                item(
                    &format!("b{n:03}"),
                    "db",
                    end - time::Duration::hours(6 * n),
                    &[],
                )
            })
            .collect()
    }

    fn kept(policy: &Policy, items: &[Item]) -> Vec<String> {
        apply(Some(policy), items)
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| d.id)
            .collect()
    }

    fn reasons_of(policy: &Policy, items: &[Item], id: &str) -> Vec<String> {
        apply(Some(policy), items)
            .into_iter()
            .find(|d| d.id == id)
            .unwrap()
            .reasons
    }

    #[test]
    fn no_policy_keeps_everything() {
        let h = history();
        let d = apply(None, &h);
        assert!(d.iter().all(|d| d.keep && d.reasons == ["no policy"]));
    }

    #[test]
    fn newest_is_always_kept() {
        // A policy keeping nothing else still keeps the newest of each source.
        let mut h = history();
        h.push(item("other", "files", datetime!(2020-01-01 00:00 UTC), &[]));
        let p = Policy {
            keep_tags: vec!["never-used".into()],
            ..Default::default()
        };
        assert_eq!(kept(&p, &h), vec!["b000", "other"]);
        assert_eq!(reasons_of(&p, &h, "other"), vec!["newest"]);
    }

    #[test]
    fn keep_last() {
        let h = history();
        let p = Policy {
            keep_last: Some(3),
            ..Default::default()
        };
        assert_eq!(kept(&p, &h), vec!["b000", "b001", "b002"]);
        assert_eq!(reasons_of(&p, &h, "b000"), vec!["last", "newest"]);
        assert_eq!(reasons_of(&p, &h, "b002"), vec!["last"]);
    }

    #[test]
    fn keep_hourly() {
        // Backups every 6 hours: each is the only one in its hour.
        let h = history();
        let p = Policy {
            keep_hourly: Some(4),
            ..Default::default()
        };
        assert_eq!(kept(&p, &h), vec!["b000", "b001", "b002", "b003"]);
        // Two in the same hour: only the newer counts.
        let t = datetime!(2026-01-01 10:00 UTC);
        let items = vec![
            item("a", "s", t + time::Duration::minutes(50), &[]),
            item("b", "s", t + time::Duration::minutes(10), &[]),
            item("c", "s", t - time::Duration::minutes(30), &[]),
        ];
        let p = Policy {
            keep_hourly: Some(2),
            ..Default::default()
        };
        assert_eq!(kept(&p, &items), vec!["a", "c"]);
    }

    #[test]
    fn keep_daily_keeps_the_newest_of_each_day() {
        let h = history();
        let p = Policy {
            keep_daily: Some(3),
            ..Default::default()
        };
        // 18:00 of 03-01, 02-28, 02-27 (four a day: b000, b004, b008).
        assert_eq!(kept(&p, &h), vec!["b000", "b004", "b008"]);
        assert_eq!(reasons_of(&p, &h, "b004"), vec!["daily"]);
    }

    #[test]
    fn keep_weekly_uses_iso_weeks() {
        let h = history();
        let p = Policy {
            keep_weekly: Some(3),
            ..Default::default()
        };
        let k = kept(&p, &h);
        // 2026-03-01 is a Sunday: the newest backup closes ISO week 9; the
        // next kept are the last backups of the two previous weeks
        // (Sundays 02-22 and 02-15 at 18:00).
        assert_eq!(k, vec!["b000", "b028", "b056"]);
    }

    #[test]
    fn keep_monthly_and_yearly() {
        let h = history();
        let p = Policy {
            keep_monthly: Some(5),
            ..Default::default()
        };
        // March (b000), February's last (02-28 18:00 = b004), January's last
        // (01-31 18:00 = b004 + 28*4 = b116); the history starts on 01-01, so
        // only three months exist.
        assert_eq!(kept(&p, &h), vec!["b000", "b004", "b116"]);
        let mut h2 = h.clone();
        h2.push(item("old", "db", datetime!(2024-06-01 00:00 UTC), &[]));
        h2.push(item("older", "db", datetime!(2024-05-01 00:00 UTC), &[]));
        let p = Policy {
            keep_yearly: Some(2),
            ..Default::default()
        };
        assert_eq!(kept(&p, &h2), vec!["b000", "old"]);
    }

    #[test]
    fn keep_within_is_relative_to_the_newest_backup() {
        let h = history();
        let p = Policy {
            keep_within: Some(Duration::from_secs(86400)),
            ..Default::default()
        };
        // 24 hours back from 03-01 18:00 inclusive: 5 backups.
        assert_eq!(kept(&p, &h), vec!["b000", "b001", "b002", "b003", "b004"]);
    }

    #[test]
    fn keep_tags() {
        let mut h = history();
        h[100].tags = vec!["release".into()];
        h[200].tags = vec!["other".into()];
        let p = Policy {
            keep_last: Some(1),
            keep_tags: vec!["release".into()],
            ..Default::default()
        };
        assert_eq!(kept(&p, &h), vec!["b000", "b100"]);
        assert_eq!(reasons_of(&p, &h, "b100"), vec!["tag:release"]);
    }

    #[test]
    fn rules_apply_per_source_and_combine() {
        let t = datetime!(2026-01-10 12:00 UTC);
        let items = vec![
            item("a1", "a", t, &[]),
            item("a2", "a", t - time::Duration::days(1), &[]),
            item("a3", "a", t - time::Duration::days(2), &[]),
            item("b1", "b", t - time::Duration::days(30), &[]),
            item("b2", "b", t - time::Duration::days(31), &[]),
        ];
        let p = Policy {
            keep_last: Some(1),
            keep_daily: Some(2),
            ..Default::default()
        };
        let d = apply(Some(&p), &items);
        let keep: Vec<_> = d.iter().filter(|d| d.keep).map(|d| d.id.as_str()).collect();
        assert_eq!(keep, vec!["a1", "a2", "b1", "b2"]);
        assert_eq!(d[0].reasons, vec!["daily", "last", "newest"]);
        assert!(!d[2].keep && d[2].reasons.is_empty());
    }
}
