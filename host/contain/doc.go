// Package contain keeps the processes of a plugin launch from outliving it.
//
// A launch runs in a Scope. When the launch ends — the plugin exited, was
// cancelled or timed out — Scope.Close kills every process the plugin
// started, whatever process group or session it moved to, waits until they
// are gone and reaps those that became the host's children. Sweep, run at
// boot before the runtime dir is emptied, kills what a host that died
// (kill -9) left running.
//
// Two mechanisms, chosen once by New:
//
//   - cgroup (Linux, a writable cgroup v2 hierarchy with cgroup.kill, kernel
//     5.14 or later): each launch gets its own cgroup beside the host's,
//     named connhost-<random>; the plugin is born in it (CLONE_INTO_CGROUP),
//     so everything it forks is too, and cgroup.kill kills the lot at once.
//     The cgroup's path is recorded in the runtime dir (<name>.cgroup) until
//     it is removed, which is how Sweep finds it after a crash. Exact: a
//     process cannot leave its cgroup without privileges the plugin lacks.
//   - proc (elsewhere): the scope is found by walking /proc — processes
//     whose working directory is inside the launch's private dir, or whose
//     environment carries the launch's marker (CONNHOST_RUN_ID=…), or that
//     the host adopted. A process that both leaves the dir and clears its
//     environment escapes this walk; the README says so.
//
// With Config.Subreaper the host becomes a child subreaper
// (PR_SET_CHILD_SUBREAPER): a process whose parent exits is reparented to
// the host, not to init, so nothing a plugin double-forks is lost from
// view, and the Manager reaps such adopted processes when they exit. The
// host must then start children only through a Scope (Scope.Start), so the
// reaper knows which children are the launcher's to wait for.
package contain
