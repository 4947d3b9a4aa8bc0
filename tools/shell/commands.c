/* SPDX-License-Identifier: MIT */
/*
 * commands.c - bpool-shell's command table, its help, and running one
 * input line.
 *
 * The table is the one place a command is described: its name, usage,
 * one-line and long help, the words tab completion offers after it, how
 * many arguments it takes, whether it needs an open pool, and its handler.
 * "help", "help CMD", --help and completion are all generated from it.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <string.h>

#include "shell.h"

static handler_fn cmd_help, cmd_quit;

const struct command shell_commands[] = {
    {"open", NULL,
     "open FILE [create|excl] [frames=N|pool=SIZE] [poolmax=SIZE] [pagesize=SIZE] "
     "[flushers=N|noflush] [noreadahead] [queue=N] [rate=N] "
#ifdef BP_CHECKSUMS
     "[checksums] "
#endif
     "[noheader] [doublewrite [atomic]]",
     "open a data file (closing the open one)",
     "Closes the open pool (unpinning the shell's pages), then opens FILE.\n"
     "  create        create FILE if it does not exist (else it must)\n"
     "  excl          create FILE, which must not exist\n"
     "  frames=N      frames in the pool (at least 4)\n"
     "  pool=SIZE     pool size in bytes instead, e.g. 64M\n"
     "  poolmax=SIZE  the largest size \"resize\" may give the pool\n"
     "                (default: its size)\n"
     "  pagesize=SIZE page size: a power of two from 4k to 1M; it must be\n"
     "                the one the file was made with (default: the file's)\n"
     "  flushers=N    background flusher threads (0: none, like noflush)\n"
     "  noflush       no flushers: dirty pages are written by evictions,\n"
     "                flush, sync, checkpoint and close only\n"
     "  noreadahead   no automatic read-ahead (prefetch still works)\n"
     "  queue=N       AIO queue depth (1 to 65536)\n"
     "  rate=N        checkpoint rate limit, pages per second (0: no limit)\n"
     "  noheader      FILE has no header page (bpool 0.1 or another program)\n"
     "  doublewrite   a new FILE gets a doublewrite area (torn-write repair)\n"
     "  atomic        with it: atomic writes wherever FILE takes them\n"
#ifdef BP_CHECKSUMS
     "  checksums     keep a checksum in every page (BP_CHECKSUMS)\n"
#endif
     "What is not given comes from the command line (--frames, ...), else\n"
     "from the library's defaults.  SIZE takes K, M, G or T suffixes (powers\n"
     "of 1024; any case).",
     "FILE [create|excl] [frames=|pool=] [poolmax=] [pagesize=] "
     "[flushers=|noflush] [noreadahead] [queue=] [rate=] [noheader] "
     "[doublewrite] [atomic]"
#ifdef BP_CHECKSUMS
     " [checksums]"
#endif
     , 1, 15, false, cmd_open},
    {"close", NULL, "close", "unpin all, write back, sync, close the pool",
     "Unpins the pages the shell holds, writes every dirty page back,\n"
     "syncs the file and closes the pool.  Commands other than open, help\n"
     "and quit need an open pool.",
     NULL, 0, 0, true, cmd_close},
    {"info", NULL, "info", "show the pool's configuration",
     "Prints one \"name value\" line each for: file, page_size, pages,\n"
     "frames, frames_max, pool_bytes, queue_depth, aio_lanes,\n"
     "dio_mem_align, dio_offset_align, frame_align, align_source,\n"
     "io_engine, huge_pages, flushers, dirty_low, dirty_high, dirty_max\n"
     "(% of frames), coalesce_bytes, checkpoint_rate, readahead_min,\n"
     "readahead_max (0: read-ahead off), checksums, page_payload,\n"
     "format_version, file_id, doublewrite_pages, torn_repaired,\n"
     "atomic_write_max, atomic_writes, files.",
     NULL, 0, 0, true, cmd_info},
    {"alloc", NULL, "alloc [N] [file=F]",
     "add N (default 1) zeroed pages to the file",
     "Extends the data file by N zero-filled pages (1 to 1048576) and\n"
     "prints their numbers, e.g. \"allocated 3 pages: 0-2\".  The new\n"
     "pages are left unpinned.  Ctrl-C stops it between two pages.\n"
     "file=F: extend file F of the pool (see attach; default: file 0).",
     "[file=]", 0, 2, true, cmd_alloc},
    {"pin", NULL, "pin PAGE [read|write] [scan]",
     "pin a page until unpin (default: read)",
     "Pins PAGE with a shared (read, the default) or exclusive (write)\n"
     "latch and keeps it pinned until unpin, close or quit; says whether\n"
     "it was a hit or a miss.  scan passes the BP_SCAN hint: a page it\n"
     "brings in enters cold with no test period, and goes when the cold\n"
     "hand next comes round to it unless it was used again.  Commands on\n"
     "the page use this pin; write, writehex and fill refuse a page pinned\n"
     "for read, flush a page pinned for write, and evict keeps a page\n"
     "pinned at all.  The shell holds one pin per page, 64 pages at most.",
     "PAGE [read|write] [scan]", 1, 3, true, cmd_pin},
    {"unpin", NULL, "unpin PAGE...|all", "release pages pinned by \"pin\"",
     "Releases the shell's pin on each PAGE, or on every page with \"all\".\n"
     "If one PAGE is not pinned, nothing is unpinned.",
     "all", 1, -1, true, cmd_unpin},
    {"pinned", NULL, "pinned", "list the pages the shell keeps pinned",
     "Prints one \"PAGE MODE\" line per page pinned by \"pin\", in the\n"
     "order they were pinned (\"3 read scan\" for a scan pin), or\n"
     "\"no pinned pages\".",
     NULL, 0, 0, true, cmd_pinned},
    {"write", NULL, "write PAGE OFFSET TEXT", "write text into a page",
     "Copies TEXT into PAGE at byte OFFSET and marks the page dirty.  Put\n"
     "TEXT in double quotes when it has blanks or ';', or starts with '#';\n"
     "inside quotes \\n \\t \\r \\0 \\\\ \\\" and \\xHH stand for bytes.  No\n"
     "NUL byte is added.  Uses the shell's write pin on the page, or pins\n"
     "it for write for the duration of the command.",
     NULL, 3, -1, true, cmd_write},
    {"writehex", NULL, "writehex PAGE OFFSET HEXBYTES...",
     "write bytes given in hex into a page",
     "Writes bytes into PAGE at OFFSET, given as hex digit pairs in one or\n"
     "more words: \"de ad be ef\", \"deadbeef\" and \"0xdead beef\" are the\n"
     "same four bytes.  Marks the page dirty, like write.",
     NULL, 3, -1, true, cmd_writehex},
    {"fill", NULL, "fill PAGE PATTERN [OFFSET [LEN]]",
     "fill a range of a page with a byte or a pattern",
     "Fills LEN bytes of PAGE from OFFSET (default: the whole page, or from\n"
     "OFFSET to its end) with PATTERN, repeated:\n"
     "  BYTE          one byte, 0 to 255 (e.g. 65 or 0x41)\n"
     "  0xHHHH...     several bytes in hex (e.g. 0xdeadbeef)\n"
     "  text:STRING   the bytes of STRING (quote it for blanks)\n"
     "  seq           00 01 02 ... ff\n"
     "Marks the page dirty, like write.",
     "PAGE seq|text:", 2, 4, true, cmd_fill},
    {"read", "hexdump", "read PAGE|FIRST-LAST [OFFSET [LEN]]",
     "hexdump a page or pages (also: hexdump)",
     "Shows LEN bytes of PAGE from OFFSET (default: the whole page, or from\n"
     "OFFSET to its end) like xxd: offset, 16 bytes in hex, the bytes as\n"
     "text.  A run of lines equal to the line before them shows as one \"*\"\n"
     "line; the last line is always shown.  Offsets are within the page.\n"
     "With a range of pages (FIRST-LAST or FIRST+COUNT), each page is\n"
     "shown the same way under a \"page N:\" line.",
     NULL, 1, 3, true, cmd_read},
    {"compare", "cmp", "compare PAGE1 PAGE2 [OFFSET [LEN]]",
     "compare two pages (also: cmp)",
     "Compares LEN bytes of two pages from OFFSET (default: whole pages).\n"
     "Prints \"pages A and B are equal ...\", or how many bytes differ and\n"
     "where, then the differing 16-byte lines (at most 16), \"<\" for\n"
     "PAGE1 and \">\" for PAGE2.  A difference is not an error.",
     NULL, 2, 4, true, cmd_compare},
    {"flush", NULL, "flush PAGE|all", "write dirty pages back (not durable)",
     "Writes PAGE back if it is dirty and in memory, or every dirty page\n"
     "with \"all\" (pages the shell holds for write are skipped).  The\n"
     "data is durable only after sync or checkpoint.",
     "all", 1, 1, true, cmd_flush},
    {"sync", NULL, "sync", "write back every dirty page and fdatasync",
     "Writes back every dirty page and fdatasyncs the file: every change\n"
     "made before it is durable when it succeeds.  A dirty page the shell\n"
     "holds for write is not written: the others are, and sync fails\n"
     "naming it (unpin it, then sync again).",
     NULL, 0, 0, true, cmd_sync},
    {"checkpoint", NULL, "checkpoint", "write back dirty pages at the "
     "checkpoint rate, then fdatasync",
     "Like sync, but writes at most rate= pages per second (open option;\n"
     "0: no limit), so the writes do not crowd the device; prints how many\n"
     "pages it wrote.",
     NULL, 0, 0, true, cmd_checkpoint},
    {"prefetch", NULL, "prefetch PAGE|FIRST-LAST|FIRST+COUNT [scan] [wait]",
     "start reading pages in the background",
     "Queues the pages for the pool's reader thread and returns at once\n"
     "(bp_prefetch): a later pin of them waits only for their read.  scan\n"
     "brings them in as scan pages.  wait waits until they are in memory\n"
     "(or none arrived for a second: the reader stops when no clean cold\n"
     "frame is free) and says how many are.  Pages past the end of the\n"
     "file are left out.",
     "PAGES [scan] [wait]", 1, 3, true, cmd_prefetch},
    {"attach", NULL, "attach FILE [create]",
     "open another data file into the pool",
     "Opens FILE into the open pool beside the files it has (bp_attach),\n"
     "with the pool's options, under the lowest free file number, and says\n"
     "which.  FILE must exist; create makes it if it does not (as open's\n"
     "create).  Its pages are then named FILE:PAGE in every page command\n"
     "(pin 1:7, read 1:0-3); a bare PAGE is a page of file 0, the one\n"
     "open opened.  All files share the pool's frames.",
     "FILE [create]", 1, 2, true, cmd_attach},
    {"detach", NULL, "detach N", "write back and close file N of the pool",
     "Writes back file N's dirty pages, syncs it, drops its pages from the\n"
     "pool and closes it (bp_detach); the other files' pages stay.  The\n"
     "shell must hold no page of it pinned.",
     NULL, 1, 1, true, cmd_detach},
    {"truncate", NULL, "truncate PAGES [file=F]",
     "cut the file back to its first PAGES pages",
     "Cuts the data file back to its first PAGES pages (bp_truncate_file):\n"
     "the pages at and past PAGES leave the pool and the file, the file is\n"
     "synced, and the header records the new count (dirty pages below the\n"
     "cut stay dirty: flush or sync writes them).  What those pages held\n"
     "is gone.  The shell must hold none of them pinned.  file=F: cut\n"
     "file F of the pool (default: file 0).",
     "[file=]", 1, 2, true, cmd_truncate},
    {"files", NULL, "files", "list the files of the pool",
     "Prints one line per attached file: its number, its pages, how many\n"
     "of them are resident and dirty, and its path.",
     NULL, 0, 0, true, cmd_files},
    {"resize", NULL, "resize SIZE", "grow or shrink the pool while it works",
     "Changes the pool's size to SIZE bytes (bp_resize), from 4 frames up\n"
     "to the most poolmax= (or --pool-max) reserved at open, and says how\n"
     "long it took.  Growing adds free frames at once.  Shrinking writes\n"
     "back and evicts the pages of the frames that go, waiting (10 s at\n"
     "most) for their pins: a page this shell holds pinned there makes it\n"
     "fail, and the pool keeps its size.",
     NULL, 1, 1, true, cmd_resize},
    {"dump", NULL, "dump FILE", "write the list of resident pages to FILE",
     "Writes which pages are resident, and which of them are hot, to FILE\n"
     "(bp_dump_resident): a small file that \"warm\" - in this pool or\n"
     "one opened later on the same data file - reads back.  The old FILE\n"
     "is replaced only once the new one is whole.",
     NULL, 1, 1, true, cmd_dump},
    {"warm", NULL, "warm FILE [wait]", "read back the pages a dump lists",
     "Hands the pages FILE lists (written by dump, or by bp_close of a\n"
     "pool with bp_options.warm_file) to the reader thread, hot pages first\n"
     "(bp_warm), and returns at once.  Warming takes free frames only and\n"
     "skips pages already resident.  wait waits until it is over and says\n"
     "how long it took and how many pages it read.  A dump of another\n"
     "data file or page size, or a damaged one, is refused.",
     "FILE [wait]", 1, 2, true, cmd_warm},
    {"stream", NULL, "stream PAGE|FIRST-LAST|FIRST+COUNT [depth=N] [scan] [json]",
     "read pages through a read stream; show its counts",
     "Reads the pages through a read stream (bp_stream_open_range), which\n"
     "keeps reads of the pages to come in flight from this thread, adjacent\n"
     "pages in one request, and unpins each page as it comes.  Pages are\n"
     "pinned for read; scan adds the BP_SCAN hint (pages it brings in are\n"
     "cold with no test period: they go when the cold hand next comes\n"
     "round to them unless used again).  depth=N: pages looked ahead at\n"
     "most (1 to 1024, default 64; at most 1/8 of the frames).  Prints the\n"
     "pages handed out, the errors, MiB and MiB/s, and the stream's read\n"
     "requests, hits (pages already resident) and reads.  A page that fails\n"
     "is shown as an error and the stream goes on; the command then fails.\n"
     "Pages past the end of the file are left out.  Ctrl-C stops it.  json\n"
     "prints the result as one JSON object (doc/tools.md).",
     "PAGES [depth=] [scan] [json]", 1, 4, true, cmd_stream},
    {"evict", NULL, "evict PAGE|FIRST-LAST|all",
     "drop clean, unpinned pages from the pool",
     "Drops PAGE from the pool if it is resident, clean and unpinned\n"
     "(bp_evict_page), for experiments: watch the policy, force a re-read.\n"
     "With a range or \"all\", drops every such page and counts those\n"
     "kept because they are pinned, dirty or under I/O.",
     "all", 1, 1, true, cmd_evict},
    {"stats", NULL, "stats [reset]", "show (or reset) the pool's statistics",
     "Prints one \"name value\" line per field of struct bp_stats, in its\n"
     "order: hits misses reads writes evictions evict_writes\n"
     "flusher_writes write_requests write_errors clean_waits throttle_waits\n"
     "prefetch_pages prefetch_hits prefetch_wasted readahead_windows\n"
     "io_errors io_submits allocs nofree syncs, the gauges dirty pinned\n"
     "resident hot cold nonresident cold_target, the optimistic-read,\n"
     "miss-lock, miss-phase and warm-restart counters, resizes,\n"
     "io_fixed_buffers io_fixed_files, then hit_ratio = hits /\n"
     "(hits + misses) with four decimals (- before any pin), then the\n"
     "latency of the shell's own pins: shell_pins and shell_pin_us_min,\n"
     "_avg, _p50, _p99, _max (microseconds).  \"stats reset\" zeroes the\n"
     "counters and the shell's latencies (not the gauges).",
     "reset", 0, 1, true, cmd_stats},
    {"frames", NULL, "frames [all]", "table of the pool's frames",
     "One line per frame holding a page (every frame with \"all\"):\n"
     "  frame  the frame's number\n"
     "  page   the page it holds, - if free\n"
     "  pins   pin count\n"
     "  dirty  yes if changed since it was last written\n"
     "  state  free, reading, writing, valid, prefetched (read ahead and\n"
     "         not pinned since), leaving (in a frame a shrink is\n"
     "         emptying: new pins of the page wait), invalid\n"
     "  clock  CLOCK-Pro status: hot, cold, cold-test (cold in its test\n"
     "         period), free\n"
     "  ref    CLOCK-Pro reference bit\n"
     "then a summary line.",
     "all", 0, 1, true, cmd_frames},
    {"clock", NULL, "clock [summary]", "CLOCK-Pro's list, hands and counts",
     "Lists CLOCK-Pro's clock from the oldest entry to the newest: position,\n"
     "page, frame (- for a non-resident page), status (hot, cold,\n"
     "cold-test, nonresident), reference bit and the hands standing on it\n"
     "(\"<- hot cold test\").  Then the counts of hot, cold and non-resident\n"
     "pages and free frames, m_c (the frames given to cold pages) with its\n"
     "bounds, and the page under each hand.  \"summary\" leaves out the\n"
     "list.  Pin pages on a small pool (open FILE frames=8) between two\n"
     "clocks to watch the algorithm.",
     "summary", 0, 1, true, cmd_clock},
    {"load", NULL, "load seq|random|zipf|loop [N] [range=FIRST-LAST] "
     "[window=W] [theta=T] [seed=S] [write] [scan] [json]",
     "pin N pages in a pattern; show the hit ratio",
     "Pins and unpins N pages (default: as many as the range has; 3 x W\n"
     "for loop) in a pattern and prints the hits, misses, hit ratio and\n"
     "evictions it caused:\n"
     "  seq     consecutive pages, wrapping at the end of the range\n"
     "  random  uniform over the range\n"
     "  zipf    page FIRST+k with probability ~ 1/(k+1)^T (theta=T, default\n"
     "          0.99; ranges up to 4194304 pages)\n"
     "  loop    cycles over the first W pages (window=W, default: a quarter\n"
     "          more than the pool's frames)\n"
     "range= limits the pages (default: the whole file); seed=S changes\n"
     "the random sequence (default 1, so runs repeat); write pins for\n"
     "write and marks the pages dirty without changing their bytes; scan\n"
     "passes the BP_SCAN hint.  Counts are exact when read-ahead is off\n"
     "(open FILE noreadahead).  Ctrl-C stops it and reports the pins done.\n"
     "json prints the result as one JSON object (doc/tools.md).",
     "seq|random|zipf|loop [range=] [window=] [theta=] [seed=] [write] "
     "[scan] [json]",
     1, 9, true, cmd_load},
    {"bench", NULL, "bench seq|random|zipf|loop [N] [options of load]",
     "like load, and time it",
     "Runs like load (same patterns and options), then prints the time,\n"
     "pins per second and the latency percentiles of its pins (p50, p90,\n"
     "p99, max, in microseconds).  json: the result as one JSON object\n"
     "(doc/tools.md).",
     "seq|random|zipf|loop [range=] [window=] [theta=] [seed=] [write] "
     "[scan] [json]",
     1, 9, true, cmd_load},
    {"help", NULL, "help [COMMAND]", "list the commands, or explain one",
     "Without COMMAND lists every command; with it shows its usage and\n"
     "what it does.",
     "COMMAND", 0, 1, false, cmd_help},
    {"quit", "exit", "quit", "close the pool and leave (also: exit)",
     "Unpins the shell's pages, closes the pool (writing back dirty pages\n"
     "and syncing) and ends the shell.  End of input (Ctrl-D) does the\n"
     "same.",
     NULL, 0, 0, false, cmd_quit},
};

const size_t shell_ncommands = sizeof shell_commands / sizeof shell_commands[0];

const struct command *find_command(const struct word *w)
{
    for (size_t i = 0; i < shell_ncommands; i++)
        if (word_is(w, shell_commands[i].name) ||
            (shell_commands[i].alias != NULL &&
             word_is(w, shell_commands[i].alias)))
            return &shell_commands[i];
    return NULL;
}

/* "usage: ..." for a command, in a static buffer. */
const char *usage_of(const struct command *cmd)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "usage: %s", cmd->usage);
    return buf;
}

/* "  usage  brief" lines; a long usage puts its brief on the next line. */
void list_commands(FILE *f)
{
    for (size_t i = 0; i < shell_ncommands; i++) {
        const struct command *c = &shell_commands[i];
        if (strlen(c->usage) > 32)
            fprintf(f, "  %s\n  %-32s %s\n", c->usage, "", c->brief);
        else
            fprintf(f, "  %-32s %s\n", c->usage, c->brief);
    }
}

static int cmd_help(struct shell *sh, const struct command *cmd, int argc,
                    struct word *argv)
{
    (void)cmd;
    if (argc == 0) {
        puts("Commands (numbers are decimal or 0x hex; \";\" separates "
             "commands;\n\"#\" starts a comment):");
        list_commands(stdout);
        puts("Type \"help COMMAND\" for more.");
        return 0;
    }
    const struct command *c = find_command(&argv[0]);
    if (c == NULL)
        return fail(sh, "hint: \"help\" lists the commands",
                    "help: unknown command \"%s\"", echo(&argv[0]));
    printf("usage: %s\n", c->usage);
    if (c->alias != NULL)
        printf("also: %s\n", c->alias);
    printf("%s\n", c->help);
    return 0;
}

static int cmd_quit(struct shell *sh, const struct command *cmd, int argc,
                    struct word *argv)
{
    (void)cmd; (void)argc; (void)argv;
    sh->quit = true;
    return 0;
}

/* ------------------------------------------------------------------------
 * Running a line
 * ---------------------------------------------------------------------- */

static int run_command(struct shell *sh, int argc, struct word *argv)
{
    const struct command *cmd = find_command(&argv[0]);
    if (cmd == NULL)
        return fail(sh, "hint: \"help\" lists the commands",
                    "unknown command \"%s\"", echo(&argv[0]));
    int nargs = argc - 1;
    if (nargs < cmd->min_args)
        return fail(sh, usage_of(cmd), "%s: missing %s", cmd->name,
                    cmd->min_args - nargs == 1 ? "an argument" : "arguments");
    if (cmd->max_args >= 0 && nargs > cmd->max_args)
        return fail(sh, usage_of(cmd), "%s: too many arguments", cmd->name);
    if (cmd->needs_pool && sh->pool == NULL)
        return fail(sh, "hint: open one with: open FILE [create]",
                    "%s: no pool is open", cmd->name);
    return cmd->fn(sh, cmd, nargs, argv + 1);
}

/* Has the output gone away (a closed pipe, a full disk)?  Then say so
 * once, count it as an error and end the session (main() closes the
 * pool): a command run after it would change the file with nobody told. */
bool output_broken(struct shell *sh)
{
    if (sh->output_gone)
        return true;
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return false;
    fprintf(stderr, PROG ": cannot write the output (%s); closing the pool "
            "and stopping\n", strerror(errno ? errno : EIO));
    sh->output_gone = true;
    sh->quit = true;
    sh->errors++;
    return true;
}

/* Run every command of a line.  Returns -1 when the shell must stop (an
 * error or Ctrl-C in a script without -k), 1 after quit, else 0. */
int run_line(struct shell *sh, const char *line, size_t len)
{
    struct parsed p;
    const char *why;
    int ret = 0;
    bool stop = !sh->interactive && !sh->keep_going;
    if (parse_line(line, len, &p, &why) < 0) {
        fail(sh, "hint: nothing of this line was run", "%s", why);
        sh->errors++;
        parsed_free(&p);
        return stop ? -1 : 0;
    }
    for (int c = 0; c < p.ncmds && ret == 0; c++) {
        if (interrupted()) {    /* Ctrl-C between two commands */
            fail_interrupted(sh, "line");
            sh->errors++;
            ret = sh->interactive ? 0 : -1;
            break;
        }
        int end = c + 1 < p.ncmds ? p.starts[c + 1] : p.nwords;
        int rc = run_command(sh, end - p.starts[c], p.words + p.starts[c]);
        output_broken(sh);      /* after every command, not every line */
        if (rc < 0) {
            sh->errors++;
            /* Ctrl-C ends a script even with -k; at a terminal the rest
             * of the line is dropped. */
            if (stop || interrupted())
                ret = -1;
            else if (sh->interactive)
                break;   /* an error ends its line (bpool-shell(1)): what
                            follows may rely on it ("open X; truncate 0"
                            cut the pool still open) */
        }
        if (sh->quit || shell_sigterm)
            ret = 1;
    }
    parsed_free(&p);
    if (ret == -1 && sh->interactive)
        ret = 0;
    return ret;
}
