/* SPDX-License-Identifier: MIT */
/* fault.c - the system calls on the data file, through the tests' fault
 * hook (see fault.h). */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include "fault.h"

_Atomic(bp__sysfault_fn) bp__sysfault;
void *_Atomic bp__sysfault_arg;

/* 0, or the negative errno the hook wants call to fail with. */
static int consult(struct bp__fault_call *call)
{
    bp__sysfault_fn fn = atomic_load_explicit(&bp__sysfault, memory_order_acquire);
    if (__builtin_expect(fn == NULL, 1))
        return 0;
    void *arg = atomic_load_explicit(&bp__sysfault_arg, memory_order_relaxed);
    int r = fn(arg, call);
    return r < 0 ? r : 0;
}

/* Fail like a system call: -1 with errno = -err. */
static int fail_with(int err)
{
    errno = -err;
    return -1;
}

int bp__open(const char *path, int flags, mode_t mode)
{
    struct bp__fault_call c = { .op = BP__FAULT_OPEN, .fd = -1, .path = path,
                                .flags = flags };
    int e = consult(&c);
    return e < 0 ? fail_with(e) : open(path, flags, mode);
}

int bp__set_flags(int fd, int flags)
{
    struct bp__fault_call c = { .op = BP__FAULT_SETFL, .fd = fd, .flags = flags };
    int e = consult(&c);
    return e < 0 ? fail_with(e) : fcntl(fd, F_SETFL, flags);
}

int bp__lock_file(int fd, int type)
{
    struct bp__fault_call c = { .op = BP__FAULT_LOCK, .fd = fd, .flags = type };
    int e = consult(&c);
    if (e < 0)
        return fail_with(e);
    struct flock fl = { .l_type = (short)type, .l_whence = SEEK_SET,
                        .l_start = 0, .l_len = 0 };   /* l_pid must be 0 */
    return fcntl(fd, F_OFD_SETLK, &fl);
}

int bp__fallocate(int fd, int mode, off_t offset, off_t len)
{
    struct bp__fault_call c = { .op = BP__FAULT_FALLOCATE, .fd = fd,
                                .offset = (uint64_t)offset, .len = (uint64_t)len };
    int e = consult(&c);
    return e < 0 ? fail_with(e) : fallocate(fd, mode, offset, len);
}

int bp__ftruncate(int fd, off_t length)
{
    struct bp__fault_call c = { .op = BP__FAULT_FTRUNCATE, .fd = fd,
                                .len = (uint64_t)length };
    int e = consult(&c);
    return e < 0 ? fail_with(e) : ftruncate(fd, length);
}

int bp__fdatasync(int fd)
{
    struct bp__fault_call c = { .op = BP__FAULT_FDATASYNC, .fd = fd };
    int e = consult(&c);
    return e < 0 ? fail_with(e) : fdatasync(fd);
}

int bp__fsync_dir(int dir_fd, int file_fd, const char *path)
{
    struct bp__fault_call c = { .op = BP__FAULT_FSYNC_DIR,
                                .fd = dir_fd >= 0 ? dir_fd : file_fd,
                                .path = path, .flags = dir_fd < 0 };
    int e = consult(&c);
    if (e < 0)
        return fail_with(e);
    return dir_fd >= 0 ? fsync(dir_fd) : syncfs(file_fd);
}

ssize_t bp__pread(int fd, void *buf, size_t len, off_t offset)
{
    struct bp__fault_call c = { .op = BP__FAULT_PREAD, .fd = fd,
                                .offset = (uint64_t)offset, .len = len };
    int e = consult(&c);
    return e < 0 ? fail_with(e) : pread(fd, buf, len, offset);
}

ssize_t bp__pwrite(int fd, const void *buf, size_t len, off_t offset)
{
    struct bp__fault_call c = { .op = BP__FAULT_PWRITE, .fd = fd,
                                .offset = (uint64_t)offset, .len = len };
    int e = consult(&c);
    return e < 0 ? fail_with(e) : pwrite(fd, buf, len, offset);
}

void bp__fault_dio_align(int fd, uint32_t *mem_align, uint32_t *offset_align)
{
    struct bp__fault_call c = { .op = BP__FAULT_DIOALIGN, .fd = fd,
                                .mem_align = *mem_align,
                                .offset_align = *offset_align };
    if (atomic_load_explicit(&bp__sysfault, memory_order_relaxed) == NULL)
        return;
    consult(&c);
    *mem_align = c.mem_align;
    *offset_align = c.offset_align;
}
