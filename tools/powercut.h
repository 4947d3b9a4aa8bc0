/* SPDX-License-Identifier: MIT */
/*
 * powercut.h - what a power cut could leave of a data file: a recorder of
 * the writes a process makes to it, and images built from the record.
 *
 * A kill of the process loses nothing the kernel has; a power cut loses
 * what the device had not made durable.  After an fdatasync(2) returns,
 * every write that had completed before it was called is durable; any
 * other write - completed or still in flight - may be on the device, may
 * not be, may be there in part (torn at a sector or a 4 KiB boundary),
 * and such writes may land in any order.  A write that failed may be
 * there in part too, until a later write over all of it is durable.
 *
 * powercut.c keeps that state for one file.  It defines bpool's tap on
 * its I/O engines' calls (bp__io_tap, src/io_engine.h: submitting and
 * reaping, for libaio and io_uring alike) and interposes on libc's
 * pwrite, fdatasync and ftruncate: a program that links powercut.c gets
 * its own calls and bpool's (whether linked statically or as a shared
 * object) there first, passed on unchanged to the real functions.  While
 * recording, a write request to the file (IO_CMD_PWRITE or
 * IO_CMD_PWRITEV) is copied when it is submitted, marked complete when
 * its event is reaped (a pwrite(2) when it returns), and folded into
 * the durable image when an fdatasync of the file that started after its
 * completion returns 0.  Recording starts from the file's contents at
 * pc_start, which the caller must have made durable.
 *
 * pc_cut writes an image of the file as a power cut at that moment could
 * leave it: the durable image, then each write not yet durable, in a
 * random order, left out, written whole, or torn (a write sent with
 * RWF_ATOMIC never is; otherwise each 512-byte or 4 KiB
 * piece written or not).  A program opens the image as the file a
 * restart would find, and checks it against what it was promised.
 *
 * Sizes: ftruncate(2) of the file is interposed too.  A size becomes
 * durable with the fdatasync that starts after it was set (fdatasync
 * writes the metadata a later read needs); an image has the durable size
 * or, at random, the size set since, and holds nothing beyond its end.
 * Not for production: every write to the file is copied while recording.
 * Thread-safe.
 */
#ifndef BPOOL_POWERCUT_H
#define BPOOL_POWERCUT_H

#include <stdint.h>

/* Record the writes to the file at path from now on; its contents now are
 * its durable state.  Returns 0 or a negative errno (the file cannot be
 * read; recording already started). */
int pc_start(const char *path);

/* Stop recording and forget the record. */
void pc_stop(void);

struct pc_cut_info {
    unsigned pending;   /* writes not durable at the cut */
    unsigned applied;   /* of those, written whole into the image */
    unsigned torn;      /* written in part */
    unsigned dropped;   /* left out */
    uint64_t syncs;     /* fdatasync calls of the file that returned 0
                           since pc_start */
};

/* Write to image_path (created or truncated) what a power cut now could
 * leave of the file, choosing with the random seed; the recording goes
 * on.  info (may be NULL) says what was chosen.  Returns 0 or a negative
 * errno. */
int pc_cut(const char *image_path, uint64_t seed, struct pc_cut_info *info);

/* End the process at once with the exit status, as the power going off
 * ends it: every thread stops where it is and nothing runs after - no
 * atexit handler, no stdio flush, no sanitizer's exit check (which would
 * report the threads left running, halt and change the status).  Flush
 * what must be seen first. */
_Noreturn void pc_power_off(int status);

#endif
