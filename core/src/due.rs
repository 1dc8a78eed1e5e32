//! What is due at a time, done without a caller (P12; #18 item 4).
//!
//! Every kind of due work is one row of [`DUE`]: its name (its count's key
//! in `run-due`'s answer and in the docs), what it does in both languages,
//! and the function that does it at the engine clock's `now`. Each function
//! finds its work from an ordered index or a watermark and costs next to
//! nothing when nothing is due, so a pass may run every second.
//!
//! Two ways to run the passes, documented for every host:
//! - **The engine's timer thread** (config `timer`): a pass every
//!   `timer.every_ms` of real time (default 1000), and at once when a manual
//!   clock is advanced. On by default with the real clock; off by default
//!   with a manual clock, where the caller drives time (tests, replays) and
//!   may turn it on with `{"timer": {"enabled": true}}`.
//! - **`run-due`**, the one command a host's own scheduler calls (cron, a
//!   Quartz job, a Windows service's timer) when it runs the engine without
//!   the thread: the same pass, answered with what it did.
//!
//! One pass runs at a time (`Pool::due`, taken before any slot, booking or
//! domain lock, and never while one is held). A pass that fails leaves the
//! rest for the next one; a store failure is what every call then reports.
//! The commands that did part of this before (`expire-holds`,
//! `lab-check-overdue`) stay for hosts that call them.

use crate::clock::format_ms;
use crate::domains::Domains;
use crate::error::Result;
use crate::request::Req;
use serde_json::{json, Map, Value};

/// One kind of due work.
pub(crate) struct DueWork {
    /// Its count's key in `run-due`'s answer.
    pub name: &'static str,
    pub what: &'static str,
    pub what_zh: &'static str,
    /// Does what is due at `now`; returns how many things it did.
    run: fn(&Domains, crate::clock::Millis) -> Result<u64>,
}

/// Every kind of due work, in the order a pass runs them: expiries first
/// (a freed place may then go to a waiter), history last.
pub(crate) const DUE: &[DueWork] = &[
    DueWork {
        name: "holds_expired",
        what: "unpaid holds past their time-to-live expire; their places go to the waitlist or back to the pool (event hold_expired)",
        what_zh: "超过保留时限的未支付预占自动失效，号源转给候补或退回号源池（事件 hold_expired）",
        run: |d, _| Ok(d.pool.expire_all()? as u64),
    },
    DueWork {
        name: "handoffs_decided",
        what: "hand-offs to upstream hospitals not answered yet are tried again with the same request id, backing off; past their deadline the tentative hold is released, the patient told (handoff_failed) and the case flagged for reconciliation",
        what_zh: "尚未得到上级医院应答的转交以同一请求号退避重试；超过期限则释放暂占号源、通知患者（handoff_failed）并标记待对账",
        run: crate::upstream::retry_due,
    },
    DueWork {
        name: "upstream_reconciled",
        what: "every `upstream.reconcile_every_seconds` (and at the first pass), each upstream hospital's remaining places are asked for (real-time-schedule), the mirror's slots repaired to match, and flagged hand-offs settled at the hospital; counts the hospitals reached",
        what_zh: "每隔 `upstream.reconcile_every_seconds`（以及首次执行时）向各上级医院查询剩余号源（`real-time-schedule`），按其修正本地镜像号源，并在医院处了结标记待对账的转交；计数为联系上的医院数",
        run: crate::upstream::reconcile_due,
    },
    DueWork {
        name: "schedule_pushes_missed",
        what: "past `upstream.schedule_deadline` (default 17:00) each day, an upstream hospital that has not pushed its schedule since midnight raises schedule_push_missing, once a day",
        what_zh: "每天超过 `upstream.schedule_deadline`（默认 17:00）时，当天零点以来未推送排班的上级医院触发事件 schedule_push_missing，每天一次",
        run: crate::upstream::schedule_deadlines_due,
    },
    DueWork {
        name: "slots_released",
        what: "the release window opens the next days to community booking (config `release`): one event slots_released per hospital and day opened",
        what_zh: "放号时间到达，后续若干天的号源向社区开放（配置 `release`）：每家医院每个开放日一条事件 slots_released",
        run: |d, now| d.pool.announce_releases(now),
    },
    DueWork {
        name: "critical_values_escalated",
        what: "an unacknowledged critical value past its limit turns overdue and goes to the fallback receiver (critical_value_overdue), then again every limit while still unacknowledged (critical_value_escalated)",
        what_zh: "危急值超过时限未确认即转为超时并通知备用接收人（critical_value_overdue），此后每过一个时限仍未确认则再次上报（critical_value_escalated）",
        run: |d, _| Ok(crate::lab::critical::check_overdue(&d.pool, &d.lab)?.len() as u64),
    },
    DueWork {
        name: "reminders",
        what: "a booked visit's reminders at the offsets before it that config `reminder_minutes` names (event appointment_reminder)",
        what_zh: "按配置 `reminder_minutes` 在就诊前的各个时点发出预约提醒（事件 appointment_reminder）",
        run: |d, now| d.pool.send_reminders(now),
    },
    DueWork {
        name: "follow_ups_due",
        what: "a follow-up plan (before or after an exam, after a referral or discharge, periodic for a chronic patient) whose time has come turns due and is reminded once (event follow_up_due)",
        what_zh: "到期的随访计划（检查前后、转诊或出院后、慢病定期随访）转为到期并提醒一次（事件 follow_up_due）",
        run: |d, now| crate::chronic::remind_due(&d.pool, &d.chronic, now),
    },
    DueWork {
        name: "history_retired",
        what: "every 10 minutes, bookings and request ids' answers past `retention_days` leave memory (durable engines; they stay readable from the store)",
        what_zh: "每 10 分钟，超过 `retention_days` 的预约和请求应答移出内存（持久化引擎；仍可从存储读取）",
        run: |d, _| Ok(if d.pool.retire_is_due() { retire(d)?.total() } else { 0 }),
    },
];

/// The retirement pass: the pool's history (`pool/retire.rs`), then the
/// hand-offs of the bookings it retired (`upstream::retire`).
pub(crate) fn retire(d: &Domains) -> Result<crate::pool::Retired> {
    let mut r = d.pool.retire()?;
    r.handoffs = crate::upstream::retire(d)?;
    Ok(r)
}

/// One pass: every row of [`DUE`] at the engine clock's now. The answer
/// counts what each did, names the instant, and lists the works that failed
/// (the others still ran).
pub(crate) fn run_due(d: &Domains) -> Result<Value> {
    d.pool.check_open()?;
    let _one = d.pool.due.lock();
    let now = d.pool.clock.now_ms();
    let mut out = Map::new();
    out.insert("now".into(), format_ms(now, &d.pool.cfg.tz).into());
    let mut failed = Vec::new();
    let mut first_error = None;
    for w in DUE {
        match crate::panic::catch(|| (w.run)(d, now)) {
            Ok(n) => {
                out.insert(w.name.into(), n.into());
            }
            Err(e) => {
                out.insert(w.name.into(), 0.into());
                let mut v = e.to_envelope();
                v["work"] = w.name.into();
                failed.push(v);
                first_error.get_or_insert(e);
            }
        }
    }
    // A closed or failed store fails the pass as it fails every call.
    if let Some(e) = first_error.filter(|_| d.pool.check_open().is_err()) {
        return Err(e);
    }
    out.insert("failed".into(), failed.into());
    Ok(Value::Object(out))
}

/// What the timer and `run-due` do, as data (`engine-info`, the docs).
pub(crate) fn works() -> Value {
    DUE.iter().map(|w| json!({"name": w.name, "what": w.what, "what_zh": w.what_zh})).collect()
}

crate::command::command_table! { pub(crate) COMMANDS: fn(&Domains, &Req) -> Result<Value>;
    "run-due", Change, PARTIES, NONE => |d, _| run_due(d);
}
