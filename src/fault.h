/* SPDX-License-Identifier: MIT */
/*
 * fault.h - fault injection for the system calls on the data file, for
 * tests only.
 *
 * The calls bpool makes on the data file outside the AIO layer - open,
 * turning O_DIRECT on, taking the file's lock, the O_DIRECT alignment
 * probe, fallocate, ftruncate, fdatasync, the header's pread and
 * pwrite - go
 * through the wrappers below.  In normal use the hook is NULL and each
 * wrapper costs one relaxed atomic load before the real call.  A test
 * sets the hook to make chosen calls fail (as a full disk, a failing
 * device, a file system without O_DIRECT would) without the real system
 * call being made, or to change what the alignment probe found.
 *
 * The hook is process-wide (the file is opened before any pool exists);
 * it may be called from any thread, from several at once.  Set
 * bp__sysfault_arg first, then bp__sysfault.  Read and write requests are
 * failed through the AIO layer's own per-request hook instead
 * (struct bp__aio.fault in aio.h).
 *
 * The I/O engines' own calls (making a context, submitting, waiting for
 * completions) are tapped instead by a test program's bp__io_tap
 * (io_engine.h), for every engine alike.
 */
#ifndef BPOOL_FAULT_H
#define BPOOL_FAULT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

enum bp__fault_op {
    BP__FAULT_OPEN,       /* open(2) of the data file */
    BP__FAULT_SETFL,      /* fcntl(F_SETFL) of the file's flags (O_DIRECT) */
    BP__FAULT_LOCK,       /* fcntl(F_OFD_SETLK) of the whole file */
    BP__FAULT_DIOALIGN,   /* statx found the O_DIRECT alignments */
    BP__FAULT_FALLOCATE,
    BP__FAULT_FTRUNCATE,
    BP__FAULT_FDATASYNC,
    BP__FAULT_PREAD,      /* pread(2) of the header */
    BP__FAULT_PWRITE,     /* pwrite(2) of the header */
    BP__FAULT_FSYNC_DIR,  /* fsync(2) of a new file's directory (or
                             syncfs(2), flags 1, where it cannot be read) */
    BP__FAULT_NOPS        /* how many there are */
};

/* What is about to be done.  For BP__FAULT_DIOALIGN the hook may change
 * mem_align and offset_align (0 offset alignment: "no direct I/O on this
 * file"); the other fields are for reading. */
struct bp__fault_call {
    enum bp__fault_op op;
    int fd;                  /* the data file (FSYNC_DIR: the directory);
                                -1 for OPEN */
    const char *path;        /* OPEN: the path; FSYNC_DIR: the directory's */
    int flags;               /* OPEN: open(2) flags; SETFL: the new flags;
                                LOCK: F_RDLCK or F_WRLCK */
    uint64_t offset, len;    /* FALLOCATE, PREAD, PWRITE: the range;
                                FTRUNCATE: the size */
    uint32_t mem_align;      /* DIOALIGN: in and out */
    uint32_t offset_align;   /* DIOALIGN: in and out */
};

/* Return 0 to let the call go ahead, or a negative errno: the call is not
 * made and fails with that errno. */
typedef int (*bp__sysfault_fn)(void *arg, struct bp__fault_call *call);

extern _Atomic(bp__sysfault_fn) bp__sysfault;
extern void *_Atomic bp__sysfault_arg;

/* The system calls, through the hook.  They return what the real call
 * returns (-1 with errno set on failure). */
int bp__open(const char *path, int flags, mode_t mode);
int bp__set_flags(int fd, int flags);   /* fcntl(fd, F_SETFL, flags) */
int bp__lock_file(int fd, int type);    /* fcntl(fd, F_OFD_SETLK) of the
                                           whole file, F_RDLCK or F_WRLCK */
int bp__fallocate(int fd, int mode, off_t offset, off_t len);
int bp__ftruncate(int fd, off_t length);
int bp__fdatasync(int fd);
/* fsync(2) of the directory `path` open as dir_fd; with dir_fd -1,
 * syncfs(2) of the file system of file_fd instead. */
int bp__fsync_dir(int dir_fd, int file_fd, const char *path);
ssize_t bp__pread(int fd, void *buf, size_t len, off_t offset);
ssize_t bp__pwrite(int fd, const void *buf, size_t len, off_t offset);

/* Let the hook change the alignments statx reported for fd. */
void bp__fault_dio_align(int fd, uint32_t *mem_align, uint32_t *offset_align);

#endif /* BPOOL_FAULT_H */
