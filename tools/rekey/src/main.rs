//! `yilian-rekey DATA_DIR`: re-encrypts every row of a stopped store under a
//! new SM4 key (see `yilian_core::rekey`), leaving nothing under the old key
//! in any file of the directory.
//!
//! The keys are never taken from the command line (it is visible to every
//! user in `ps` and kept in shell history): they come from the environment
//! variables `YILIAN_OLD_KEY` and `YILIAN_NEW_KEY`, or, when those are not
//! set, from standard input, the old key on the first line and the new on
//! the second. Exit status 0: rekeyed; 1: refused (the store is open, a key
//! is wrong, …; nothing changed); 2: usage.

use std::io::BufRead;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir] = args.as_slice() else {
        eprintln!("usage: yilian-rekey DATA_DIR   (keys: YILIAN_OLD_KEY and YILIAN_NEW_KEY, or two lines on standard input)");
        eprintln!("用法：yilian-rekey 数据目录   （密钥：环境变量 YILIAN_OLD_KEY 与 YILIAN_NEW_KEY，或标准输入的两行）");
        return ExitCode::from(2);
    };
    let (old, new) = match (std::env::var("YILIAN_OLD_KEY"), std::env::var("YILIAN_NEW_KEY")) {
        (Ok(old), Ok(new)) => (old, new),
        _ => {
            let mut lines = std::io::stdin().lock().lines();
            let mut next = || lines.next().and_then(|l| l.ok()).unwrap_or_default();
            let old = next();
            (old, next())
        }
    };
    match yilian_core::rekey(dir, old.trim(), new.trim()) {
        Ok(rows) => {
            println!("rekeyed {rows} rows; open the store with the new key from now on");
            println!("已用新密钥重新加密 {rows} 条记录；此后请用新密钥打开数据目录");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {}", e.code_str(), e.message());
            eprintln!("{}", e.message_zh());
            ExitCode::from(1)
        }
    }
}
