//! Task and thread syscalls: spawn a task from a boot module, kill it, wait
//! for it, create and start threads, pin them, set a task's pager, and read
//! the module list.

use super::user::UserSlice;
use super::{lookup, Args, Ret, SysResult};
use crate::object::task::Task;
use crate::object::thread::Thread;
use crate::object::{Capability, Object};
use abi::cap::{Kind, Rights};
use abi::mem::USER_END;
use abi::syscall::ANY_CPU;
use abi::Error;
use alloc::sync::Arc;

fn task_of(me: &Arc<Thread>, raw: u64) -> Result<Arc<Task>, Error> {
    match lookup(me, raw, Kind::Task, Rights::CONTROL)?.object {
        Object::Task(t) => Ok(t),
        _ => unreachable!("kind checked"),
    }
}

fn thread_of(me: &Arc<Thread>, raw: u64) -> Result<Arc<Thread>, Error> {
    match lookup(me, raw, Kind::Thread, Rights::CONTROL)?.object {
        Object::Thread(t) => Ok(t),
        _ => unreachable!("kind checked"),
    }
}

pub fn spawn(me: &Arc<Thread>, a: &Args) -> SysResult {
    lookup(me, a[0], Kind::Modules, Rights::CONTROL)?;
    let module = crate::modules::all().get(a[1] as usize).ok_or(Error::NotFound)?;
    let (task, thread) = Task::spawn(&module.name, module.data, a[2]).map_err(|e| {
        log::warn!("task: cannot start {}: {e:?}", module.name);
        Error::from(e)
    })?;
    let handles = {
        let mut caps = me.task.caps.lock();
        let all = Rights::all();
        let t = caps.insert(Capability::new(Object::Task(task.clone()), all));
        let th = caps.insert(Capability::new(Object::Thread(thread.clone()), all));
        let s = caps.insert(Capability::new(Object::AddressSpace(task.user_space()), all));
        match (t, th, s) {
            (Ok(t), Ok(th), Ok(s)) => Ok([t, th, s]),
            (t, th, s) => {
                for h in [t, th, s].into_iter().flatten() {
                    let _ = caps.remove(h);
                }
                Err(Error::NoSlot)
            }
        }
    };
    match handles {
        Ok([t, th, s]) => {
            log::info!("task: {} started {} (id {})", me.task.name, task.name, task.id);
            Ok(Ret::Values([t.raw(), th.raw(), s.raw(), 0]))
        }
        Err(e) => {
            task.kill(-1);
            Err(e)
        }
    }
}

pub fn kill(me: Arc<Thread>, a: &Args) -> SysResult {
    let task = task_of(&me, a[0])?;
    let own = Arc::ptr_eq(&task, &me.task);
    task.kill(a[1] as i64);
    if own {
        drop((task, me));
        crate::sched::exit_current();
    }
    Ok(Ret::OK)
}

pub fn wait(me: &Arc<Thread>, a: &Args) -> SysResult {
    let task = task_of(me, a[0])?;
    if Arc::ptr_eq(&task, &me.task) {
        return Err(Error::InvalidArgument);
    }
    let _masked = crate::arch::cpu::InterruptGuard::new();
    match task.wait(me) {
        Some(code) => Ok(Ret::one(code as u64)),
        None => {
            crate::sched::block_and_switch(None);
            Ok(Ret::Delivered)
        }
    }
}

pub fn thread_create(me: &Arc<Thread>, a: &Args) -> SysResult {
    let task = task_of(me, a[0])?;
    let (entry, stack, arg) = (a[1], a[2], a[3]);
    if entry >= USER_END || stack > USER_END {
        return Err(Error::BadAddress);
    }
    if stack % 8 != 0 {
        return Err(Error::Misaligned);
    }
    let thread = Thread::new_user(task.clone(), entry, stack, arg)?;
    // Make the handle first: a thread nobody can name must not exist.
    let h = me.task.caps.lock().insert(Capability::new(Object::Thread(thread.clone()), Rights::all()))?;
    if let Err(e) = task.add_thread(thread) {
        let _ = me.task.caps.lock().remove(h);
        return Err(e);
    }
    Ok(Ret::one(h.raw()))
}

pub fn thread_start(me: &Arc<Thread>, a: &Args) -> SysResult {
    let thread = thread_of(me, a[0])?;
    crate::sched::start(&thread)?;
    Ok(Ret::OK)
}

pub fn set_affinity(me: &Arc<Thread>, a: &Args) -> SysResult {
    let thread = thread_of(me, a[0])?;
    let affinity = match a[1] {
        ANY_CPU => None,
        c if crate::cpu::online().contains(c as usize) => Some(c as usize),
        _ => return Err(Error::OutOfRange),
    };
    let running_on = {
        let mut s = thread.sched.lock();
        s.affinity = affinity;
        matches!(s.state, crate::object::thread::State::Running).then_some(s.cpu)
    };
    // A running thread moves at its CPU's next scheduling decision: ask
    // for one now.
    match running_on {
        Some(c) if affinity.is_some_and(|a| a != c) && c == crate::cpu::current_index() => crate::sched::request_resched(),
        Some(c) if affinity.is_some_and(|a| a != c) => crate::sched::kick(c),
        _ => {}
    }
    Ok(Ret::OK)
}

pub fn set_pager(me: &Arc<Thread>, a: &Args) -> SysResult {
    let task = task_of(me, a[0])?;
    if a[1] == 0 {
        task.clear_pager();
        return Ok(Ret::OK);
    }
    let cap = lookup(me, a[1], Kind::Endpoint, Rights::SEND)?;
    match cap.object {
        Object::Endpoint(ep) => task.set_pager(ep, cap.badge),
        _ => unreachable!("kind checked"),
    }
    Ok(Ret::OK)
}

pub fn module_info(me: &Arc<Thread>, a: &Args) -> SysResult {
    lookup(me, a[0], Kind::Modules, Rights::READ)?;
    let module = crate::modules::all().get(a[1] as usize).ok_or(Error::NotFound)?;
    let buf = UserSlice::new(a[2], a[3], 4096)?;
    buf.write(module.name.as_bytes())?;
    Ok(Ret::Values([module.name.len() as u64, module.data.len() as u64, 0, 0]))
}
