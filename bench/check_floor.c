/* The floor of bench_check's cold side: a process that reads every config
 * file of the bench tree with one read each and parses it with libyaml from
 * memory (events only: no tree, no decoding, no checks). The file list comes
 * in a file of its own, one path per line, also read with one read.
 *
 * Usage: check_floor LIST_FILE    exit 0 when every file parsed */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

static char* read_whole(const char* path, size_t* size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return NULL;
  }
  char* text = malloc((size_t)st.st_size + 1);
  ssize_t got = text ? read(fd, text, (size_t)st.st_size) : -1;
  close(fd);
  if (got != st.st_size) {
    free(text);
    return NULL;
  }
  text[got] = '\0';
  *size = (size_t)got;
  return text;
}

static int parse(const char* text, size_t size) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return 0;
  yaml_parser_set_input_string(&parser, (const unsigned char*)text, size);
  int ok = 0;
  for (;;) {
    yaml_event_t event;
    if (!yaml_parser_parse(&parser, &event)) break;
    int end = event.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&event);
    if (end) {
      ok = 1;
      break;
    }
  }
  yaml_parser_delete(&parser);
  return ok;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: check_floor LIST_FILE\n");
    return 2;
  }
  size_t list_size = 0;
  char* list = read_whole(argv[1], &list_size);
  if (!list) {
    perror(argv[1]);
    return 1;
  }
  int failed = 0;
  for (char* line = list; *line;) {
    char* end = strchr(line, '\n');
    if (end) *end = '\0';
    size_t size = 0;
    char* text = read_whole(line, &size);
    if (!text || !parse(text, size)) {
      fprintf(stderr, "%s: cannot read or parse\n", line);
      failed = 1;
    }
    free(text);
    if (!end) break;
    line = end + 1;
  }
  free(list);
  return failed;
}
