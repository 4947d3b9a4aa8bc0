/* SPDX-License-Identifier: MIT */
/* filehdr.c - a data file's header, as the tools read it (see filehdr.h). */
#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "bpool.h"

#include "filehdr.h"
#include "parse.h"
#include "printable.h"

#define RECORD_BYTES 128

static uint32_t le32_at(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

int filehdr_read(const char *path, struct filehdr *h)
{
    unsigned char r[RECORD_BYTES];
    memset(h, 0, sizeof *h);
    /* O_NONBLOCK: the open of a FIFO would wait for a writer; only a
     * regular file is read (bp_open then says what is wrong with the
     * rest). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    /* A buffered read, but one that leaves nothing in the page cache: no
     * read-ahead, and the block read dropped after - that block only: the
     * rest of the file's cache is not ours to drop (bpool-bench prepare
     * reports it, and reported 0 after this read dropped it all).  A data
     * file is read with O_DIRECT only; cached blocks of it would count as
     * data where the file has none (SEEK_DATA over unwritten extents:
     * bpool-shell's note on holes), and as cache the tools report. */
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    ssize_t got = pread(fd, r, sizeof r, 0);
    /* (whole pages only are dropped: a range that ends inside one drops
     * none of it) */
    long page = sysconf(_SC_PAGESIZE);
    (void)posix_fadvise(fd, 0, page > 0 ? (off_t)page : 65536,
                        POSIX_FADV_DONTNEED);
    close(fd);
    if (got < 0)
        return -1;
    h->bytes = (size_t)got;
    h->bpool = got == RECORD_BYTES && memcmp(r, "bpoolpg\n", 8) == 0;
    if (h->bpool) {
        h->page_size = le32_at(r + 16);
        if (h->page_size < BP_MIN_PAGE_SIZE || h->page_size > BP_MAX_PAGE_SIZE ||
            (h->page_size & (h->page_size - 1)))
            h->page_size = 0;
        h->flags = le32_at(r + 20);
        if (h->flags & FILEHDR_DOUBLEWRITE)
            h->doublewrite_pages = le32_at(r + 64);
    }
    return 0;
}

bool filehdr_page_size_differs(const struct filehdr *h, uint32_t page_size)
{
    return h->bpool && h->page_size && page_size && h->page_size != page_size;
}

void filehdr_page_size_usage(const char *path, const struct filehdr *h,
                             uint32_t page_size, const char *option,
                             const char *fix)
{
    opt_usage("%s has pages of %u bytes (its header says so), not %u: give "
              "%s %u, or %s", printable(path), h->page_size, page_size, option,
              h->page_size, fix);
}

void filehdr_take_checksums(const char *path, const struct filehdr *h,
                            int *checksums, const char *fix)
{
    if (!h->bpool)
        return;
    int has = (h->flags & FILEHDR_CHECKSUMS) != 0;
    if (*checksums < 0)
        *checksums = has;
    else if (*checksums != has)
        opt_usage("%s was made %s page checksums (its header says so), and "
                  "%s says %s: give %s, leave both out to take the file's, "
                  "or %s", printable(path), has ? "with" : "without",
                  *checksums ? "--checksums" : "--no-checksums",
                  *checksums ? "with" : "without",
                  has ? "--checksums" : "--no-checksums", fix);
}
