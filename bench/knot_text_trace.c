// Which code a knot start runs, and a link order that keeps it together
// (docs/knot.md, "Memory": the kernel maps a file's text 64 KiB around each
// fault, so scattered hot code makes every window resident).
//
//   knot_text_trace trace KNOT OUT -- CMD ARGS...
//     runs CMD under ptrace; every process that executes KNOT (by
//     /proc/PID/exe) is single-stepped until it execs something else or
//     exits, and each distinct instruction address, relative to KNOT's load
//     address, is written to OUT (hex, one per line). CMD's exit status is
//     returned. A start takes about 30 s this way (one ptrace stop per
//     instruction).
//   knot_text_trace script MAP ADDRS...
//     reads the linker map of that KNOT and the address files, and prints a
//     GNU ld script fragment that places every input text section holding a
//     traced address in one output section before .text, in link order.
//
// A developer tool (scripts/knot-hot-text.sh runs it); not run by the tests.
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

// ---- trace -----------------------------------------------------------------

enum { kMaxTracees = 4096 };
struct Tracee {
  pid_t pid;
  uint64_t knot_base;  // 0 while the tracee runs another program
  int new_tracee;      // its first stop is the automatic SIGSTOP
};
static struct Tracee tracees[kMaxTracees];
static int tracee_count;

static uint64_t* seen;  // open addressing, value + 1 (0 = empty)
static size_t seen_capacity = (size_t)1 << 22, seen_count;

static void remember(uint64_t offset) {
  const size_t mask = seen_capacity - 1;
  size_t at = (offset * 0x9E3779B97F4A7C15ull) & mask;
  while (seen[at] != 0) {
    if (seen[at] == offset + 1) return;
    at = (at + 1) & mask;
  }
  seen[at] = offset + 1;
  if (++seen_count * 2 > seen_capacity) {
    fprintf(stderr, "knot_text_trace: more than %zu addresses\n", seen_capacity / 2);
    exit(1);
  }
}

// Load address of KNOT in PID, or 0 when PID runs something else.
static uint64_t knot_base_of(pid_t pid, const char* knot) {
  char path[64], exe[PATH_MAX];
  snprintf(path, sizeof path, "/proc/%d/exe", pid);
  const ssize_t length = readlink(path, exe, sizeof exe - 1);
  if (length < 0) return 0;
  exe[length] = 0;
  if (strcmp(exe, knot) != 0) return 0;
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE* maps = fopen(path, "re");
  if (maps == NULL) return 0;
  char line[PATH_MAX + 128];
  uint64_t base = 0;
  while (base == 0 && fgets(line, sizeof line, maps) != NULL) {
    unsigned long low = 0, offset = 0;
    char name[PATH_MAX] = "";
    if (sscanf(line, "%lx-%*x %*s %lx %*s %*s %4095s", &low, &offset, name) == 3 && offset == 0 &&
        strcmp(name, knot) == 0)
      base = low;
  }
  fclose(maps);
  return base;
}

static struct Tracee* tracee_of(pid_t pid) {
  for (int i = 0; i < tracee_count; i++)
    if (tracees[i].pid == pid) return &tracees[i];
  for (int i = 0; i < tracee_count; i++)  // reuse the slot of one that is gone
    if (tracees[i].pid == 0) {
      tracees[i] = (struct Tracee){pid, 0, 1};
      return &tracees[i];
    }
  if (tracee_count == kMaxTracees) {
    fprintf(stderr, "knot_text_trace: more than %d processes\n", kMaxTracees);
    exit(1);
  }
  tracees[tracee_count] = (struct Tracee){pid, 0, 1};
  return &tracees[tracee_count++];
}

static int trace(const char* knot_arg, const char* out_path, char** command) {
  char knot[PATH_MAX];
  if (realpath(knot_arg, knot) == NULL) {
    fprintf(stderr, "knot_text_trace: %s: %s\n", knot_arg, strerror(errno));
    return 2;
  }
  seen = calloc(seen_capacity, sizeof *seen);
  if (seen == NULL) return 1;
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    ptrace(PTRACE_TRACEME, 0, 0, 0);
    raise(SIGSTOP);
    execvp(command[0], command);
    _exit(127);
  }
  int status = 0;
  if (waitpid(child, &status, 0) != child) return 1;
  ptrace(PTRACE_SETOPTIONS, child, 0,
         PTRACE_O_TRACEEXEC | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
             PTRACE_O_EXITKILL);
  tracee_of(child)->new_tracee = 0;
  ptrace(PTRACE_CONT, child, 0, 0);
  int exit_code = 1;
  long steps = 0;
  for (;;) {
    const pid_t pid = waitpid(-1, &status, __WALL);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD: every tracee is gone
    }
    struct Tracee* tracee = tracee_of(pid);
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      if (pid == child)
        exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      tracee->pid = 0;
      continue;
    }
    if (!WIFSTOPPED(status)) continue;
    const int signal = WSTOPSIG(status), event = status >> 16;
    const int first_stop = tracee->new_tracee;
    tracee->new_tracee = 0;
    int deliver = 0;
    if (signal == SIGTRAP && event == PTRACE_EVENT_EXEC) {
      tracee->knot_base = knot_base_of(pid, knot);
    } else if (signal == SIGTRAP && event != 0) {
      // clone, fork or vfork: the new tracee announces itself with its SIGSTOP
    } else if (signal == SIGSTOP && event == 0 && first_stop) {
      tracee->knot_base = knot_base_of(pid, knot);
    } else if (!(signal == SIGTRAP && event == 0)) {
      deliver = event == 0 ? signal : 0;  // a real signal (not a step): pass it on
    }
    if (tracee->knot_base != 0) {
      struct user_regs_struct registers;
      if (ptrace(PTRACE_GETREGS, pid, 0, &registers) == 0)
        remember(registers.rip - tracee->knot_base);
      steps++;
      ptrace(PTRACE_SINGLESTEP, pid, 0, deliver);
    } else {
      ptrace(PTRACE_CONT, pid, 0, deliver);
    }
  }
  FILE* out = fopen(out_path, "we");
  if (out == NULL) {
    fprintf(stderr, "knot_text_trace: %s: %s\n", out_path, strerror(errno));
    return 1;
  }
  for (size_t i = 0; i < seen_capacity; i++)
    if (seen[i] != 0) fprintf(out, "%llx\n", (unsigned long long)(seen[i] - 1));
  if (fclose(out) != 0) return 1;
  fprintf(stderr, "knot_text_trace: %ld steps, %zu distinct instructions, exit %d\n", steps,
          seen_count, exit_code);
  return exit_code;
}

// ---- script ----------------------------------------------------------------

struct Section {
  uint64_t address, size;
  char* name;  // input section, e.g. .text._ZN6lithos...
  char* file;  // object, or archive(member)
  int hot;
};
static struct Section* sections;
static size_t section_count, section_capacity;

static void add_section(uint64_t address, uint64_t size, const char* name, const char* file) {
  if (size == 0) return;
  if (section_count == section_capacity) {
    section_capacity = section_capacity ? 2 * section_capacity : 4096;
    sections = realloc(sections, section_capacity * sizeof *sections);
    if (sections == NULL) exit(1);
  }
  sections[section_count++] = (struct Section){address, size, strdup(name), strdup(file), 0};
}

// Input sections of the .text* output sections in a GNU ld map. An entry is
// " NAME ADDRESS SIZE FILE", or " NAME" with the rest on the next line when
// the name is long.
static int read_map(const char* path) {
  FILE* map = fopen(path, "re");
  if (map == NULL) {
    fprintf(stderr, "knot_text_trace: %s: %s\n", path, strerror(errno));
    return -1;
  }
  static char line[1 << 16], name[1 << 16], file[PATH_MAX];
  int in_text = 0;
  while (fgets(line, sizeof line, map) != NULL) {
    if (line[0] == '.') in_text = strncmp(line, ".text", 5) == 0;
    if (!in_text || line[0] != ' ' || strncmp(line + 1, ".text", 5) != 0) continue;
    unsigned long long address = 0, size = 0;
    int fields = sscanf(line, " %65535s %llx %llx %4095s", name, &address, &size, file);
    if (fields == 1) {
      if (fgets(line, sizeof line, map) == NULL) break;
      fields = 1 + sscanf(line, " %llx %llx %4095s", &address, &size, file);
    }
    if (fields == 4) add_section(address, size, name, file);
  }
  fclose(map);
  return 0;
}

static int by_address(const void* a, const void* b) {
  const struct Section *x = a, *y = b;
  return x->address < y->address ? -1 : x->address > y->address;
}

static void mark_hot(uint64_t address) {
  size_t low = 0, high = section_count;  // first section after ADDRESS
  while (low < high) {
    const size_t middle = (low + high) / 2;
    if (sections[middle].address <= address)
      low = middle + 1;
    else
      high = middle;
  }
  if (low > 0 && address < sections[low - 1].address + sections[low - 1].size)
    sections[low - 1].hot = 1;
}

static int script(const char* map, char** address_files) {
  if (read_map(map) != 0) return 1;
  qsort(sections, section_count, sizeof *sections, by_address);
  for (; *address_files != NULL; address_files++) {
    FILE* in = fopen(*address_files, "re");
    if (in == NULL) {
      fprintf(stderr, "knot_text_trace: %s: %s\n", *address_files, strerror(errno));
      return 1;
    }
    unsigned long long address;
    while (fscanf(in, "%llx", &address) == 1) mark_hot(address);
    fclose(in);
  }
  uint64_t hot_bytes = 0, all_bytes = 0;
  size_t hot_count = 0;
  printf(
      "/* Generated by scripts/knot-hot-text.sh (bench/knot_text_trace.c): the\n"
      "   text sections a knot start ran, placed together before .text so that\n"
      "   the kernel's fault-around maps fewer windows (docs/knot.md, \"Memory\").\n"
      "   A section missing here still links, into .text. */\n"
      "SECTIONS\n{\n  .text.knot_hot :\n  {\n");
  for (size_t i = 0; i < section_count; i++) {
    all_bytes += sections[i].size;
    if (!sections[i].hot) continue;
    hot_bytes += sections[i].size;
    hot_count++;
    const char* file = sections[i].file;
    const char* open = strrchr(file, '(');
    const char* slash;
    if (open != NULL) {  // archive(member): *archive:member
      const char* archive_end = open;
      const char* archive = file;
      for (const char* c = file; c < archive_end; c++)
        if (*c == '/') archive = c + 1;
      printf("    *%.*s:%.*s(%s)\n", (int)(archive_end - archive), archive,
             (int)(strlen(open + 1) - 1), open + 1, sections[i].name);
    } else {
      slash = strrchr(file, '/');
      printf("    *%s(%s)\n", slash ? slash + 1 : file, sections[i].name);
    }
  }
  printf("  }\n}\nINSERT BEFORE .text;\n");
  fprintf(stderr, "knot_text_trace: %zu of %zu text sections ran: %llu of %llu bytes\n", hot_count,
          section_count, (unsigned long long)hot_bytes, (unsigned long long)all_bytes);
  return hot_count == 0;
}

int main(int argc, char** argv) {
  if (argc >= 6 && strcmp(argv[1], "trace") == 0 && strcmp(argv[4], "--") == 0)
    return trace(argv[2], argv[3], argv + 5);
  if (argc >= 4 && strcmp(argv[1], "script") == 0) return script(argv[2], argv + 3);
  fprintf(stderr,
          "usage: knot_text_trace trace KNOT OUT -- CMD ARGS...\n"
          "       knot_text_trace script MAP ADDRS...\n");
  return 2;
}
