/* SPDX-License-Identifier: MIT */
/* filelock.c - the data file's lock: one writer pool per file, or any
 * number of read-only pools, never both.
 *
 * bp_open takes an open file description (OFD) lock on the whole file
 * right after opening it, before anything could change the file: F_WRLCK
 * for a writer, F_RDLCK for a BP_RDONLY pool.  OFD locks, not POSIX
 * (F_SETLK) locks, because a POSIX lock belongs to the process: a second
 * pool in the same process would be granted it, and closing any
 * descriptor of the file (a test reading it behind the pool's back) would
 * drop it.  An OFD lock belongs to the pool's own open file description:
 * a second open in the same process conflicts with it, and it goes away
 * only when that description is closed - by bp_close, or by the exit of
 * every process sharing it (kill -9 included; a fork(2) child shares it,
 * exec drops it since the descriptor is close-on-exec).  Nothing waits:
 * F_OFD_SETLK fails at once when another pool holds the file.
 *
 * Who holds it.  F_OFD_GETLK says whether a writer or readers hold the
 * file but reports the owner's pid as -1 for OFD locks, and so does
 * /proc/locks on current kernels.  So on the error path /proc/locks is
 * read first (a POSIX lock or an older kernel gives the pid), then the
 * "lock:" lines of /proc/<pid>/fdinfo/<fd>, which list the locks of each
 * open file description under the processes that have it open (only the
 * processes this one may inspect).  If neither tells, the detail says
 * "pid unknown".
 *
 * A file system without locks (ENOLCK: NFSv3 without lockd, some FUSE
 * file systems; EINVAL: a kernel before 3.15 without OFD locks) is
 * refused with -ENOLCK.  Running unlocked would bring back exactly what
 * the lock prevents - two writers overwriting each other's pages without
 * a word - and a database engineer would rather move the file than find
 * that out later.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bpool_internal.h"
#include "fault.h"

/* True if the lock line `line` (the /proc/locks format, also used by
 * fdinfo after "lock:\t") is a granted lock on the file `id`
 * ("MAJ:MIN:INO", hex device numbers as the kernel prints them) of a
 * kind that conflicts with bpool's; its pid goes to *pid.  Only POSIX
 * and OFD locks do: a flock(2) lock (kvdb flocks its file, then opens a
 * pool on it), a lease or a delegation never keeps a pool out, and
 * naming its holder would point at the wrong process - often this one. */
static bool lock_line_matches(const char *line, const char *id, long *pid)
{
    /* "N: KIND MODE TYPE PID MAJ:MIN:INO START END" */
    if (strstr(line, "->"))
        return false;   /* a waiter, not a holder */
    const char *p = strchr(line, ':');
    if (!p)
        return false;
    p++;
    p += strspn(p, " \t");
    size_t kind = strcspn(p, " \t");
    if (!(kind == 5 && strncmp(p, "POSIX", 5) == 0) &&
        !(kind == 6 && strncmp(p, "OFDLCK", 6) == 0))
        return false;
    for (int field = 0; field < 3; field++) {   /* KIND MODE TYPE */
        p += strspn(p, " \t");
        p += strcspn(p, " \t");
    }
    char *end;
    *pid = strtol(p, &end, 10);
    if (end == p)
        return false;
    p = end + strspn(end, " \t");
    size_t len = strlen(id);
    return strncmp(p, id, len) == 0 && (p[len] == ' ' || p[len] == '\t');
}

/* A pid holding a lock on `id` according to /proc/locks, or 0. */
static long holder_from_proc_locks(const char *id)
{
    FILE *f = fopen("/proc/locks", "re");
    char line[256];
    long found = 0, pid;
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof(line), f))
        if (lock_line_matches(line, id, &pid) && pid > 0)
            found = pid;
    (void)fclose(f);
    return found;
}

/* True if /proc/<pid>/fdinfo/<fd> (path) lists a lock on `id`. */
static bool fdinfo_has_lock(const char *path, const char *id)
{
    FILE *f = fopen(path, "re");
    char line[256];
    bool found = false;
    long pid;
    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f))
        found = strncmp(line, "lock:", 5) == 0 &&
                lock_line_matches(line + 5, id, &pid);
    (void)fclose(f);
    return found;
}

/* A process that has an open file description with a lock on `id`, found
 * through /proc/<pid>/fdinfo, or 0.  Our own descriptor `self_fd`, which
 * failed to lock, holds nothing and is not looked at. */
static long holder_from_fdinfo(const char *id, int self_fd)
{
    DIR *proc = opendir("/proc");
    struct dirent *pe;
    long found = 0, self = (long)getpid();
    if (!proc)
        return 0;
    while (!found && (pe = readdir(proc))) {
        if (!isdigit((unsigned char)pe->d_name[0]))
            continue;
        char dir[300];
        (void)snprintf(dir, sizeof(dir), "/proc/%s/fdinfo", pe->d_name);
        DIR *fds = opendir(dir);
        if (!fds)
            continue;   /* gone, or not ours to read */
        long pid = strtol(pe->d_name, NULL, 10);
        struct dirent *fe;
        while (!found && (fe = readdir(fds))) {
            if (!isdigit((unsigned char)fe->d_name[0]))
                continue;
            if (pid == self && strtol(fe->d_name, NULL, 10) == self_fd)
                continue;
            char path[600];
            (void)snprintf(path, sizeof(path), "%s/%s", dir, fe->d_name);
            if (fdinfo_has_lock(path, id))
                found = pid;
        }
        closedir(fds);
    }
    closedir(proc);
    return found;
}

/* "pid N", "pid N, this process" or "pid unknown", into buf. */
static const char *describe_holder(const struct bp__datafile *df, char *buf,
                                   size_t len)
{
    struct stat st;
    long pid = 0;
    if (fstat(df->fd, &st) == 0) {
        char id[64];
        (void)snprintf(id, sizeof(id), "%02x:%02x:%lu", major(st.st_dev),
                 minor(st.st_dev), (unsigned long)st.st_ino);
        pid = holder_from_proc_locks(id);
        if (!pid)
            pid = holder_from_fdinfo(id, df->fd);
    }
    if (!pid)
        (void)snprintf(buf, len, "pid unknown");
    else if (pid == (long)getpid())
        (void)snprintf(buf, len, "pid %ld, this process: a second pool on a "
                       "file this process has open already", pid);
    else
        (void)snprintf(buf, len, "pid %ld", pid);
    return buf;
}

/* The lock is refused: say who has the file and what to do. */
static int locked_error(const struct bp__datafile *df, bool shared)
{
    char who[160];
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    /* Which kind of lock is in the way: a writer's or readers'. */
    bool writer_holds = fcntl(df->fd, F_OFD_GETLK, &fl) < 0 ||
                        fl.l_type != F_RDLCK;
    describe_holder(df, who, sizeof(who));
    if (shared)
        return bp__fail(-BP_ELOCKED, "cannot open %s read-only: the data "
                        "file is in use by a writer pool (%s); read-only "
                        "pools share a file only with each other - close the "
                        "writer's pool, or wait for its process to end",
                        df->path, who);
    if (!writer_holds)
        return bp__fail(-BP_ELOCKED, "cannot open %s: the data file is in "
                        "use by a read-only pool (%s), and a writer needs it "
                        "to itself - close the read-only pools (or wait for "
                        "their processes to end), or %s too", df->path, who,
                        bp__rdonly_fix(df->attaching));
    return bp__fail(-BP_ELOCKED, "cannot open %s: the data file is in use by "
                    "another pool (%s); close that pool, or wait for its "
                    "process to end (a child made by fork(2) holds its "
                    "parent's lock until it exits or execs) - one writer "
                    "per file; to only read it, %s once no writer has it",
                    df->path, who, bp__rdonly_fix(df->attaching));
}

int bp__file_lock(struct bp__datafile *df, bool shared)
{
    if (bp__lock_file(df->fd, shared ? F_RDLCK : F_WRLCK) == 0)
        return 0;
    int e = errno;
    if (e == EAGAIN || e == EACCES)
        return locked_error(df, shared);
    if (e == ENOLCK || e == EINVAL)
        return bp__fail(-ENOLCK, "cannot lock %s: %s (%s), so bpool cannot "
                        "keep a second pool from overwriting its pages and "
                        "refuses to open it; put the data file on a local "
                        "file system (ext4, xfs) or on NFS with working locks "
                        "(NFSv4, or NFSv3 with lockd)", df->path,
                        e == EINVAL ? "the kernel has no open file "
                        "description locks (Linux 3.15 or later is needed)" :
                        "the file system does not support file locks",
                        strerror(e));
    return bp__fail(-e, "cannot lock %s: %s", df->path, strerror(e));
}
