/*
 * /usr/bin/container-disk of the virtops image: the helper a launcher Pod's containerDisk
 * containers run (seed document 2.4.2-2.4.4). The `container-disk-binary` init container
 * copies it into the Pod's virt-bin-share-dir emptyDir; the volume containers run it from
 * there with their disk image as the root filesystem, which has no libc: so it is static.
 *
 *   container-disk --no-op            exit 0 (the init container: makes the runtime pull
 *                                     the image and create the mount points)
 *   container-disk --copy-path PATH   copy the image's disk (every regular file directly
 *                                     under /disk) into the directory PATH, in the shared
 *                                     emptyDir, then stay up until SIGTERM/SIGINT, holding
 *                                     the image as the Pod's volume container
 *
 * KubeVirt's helper only listens on PATH.sock, and its node agent (privileged) bind-mounts
 * the disk out of the container's root; without such an agent, a copy the compute container
 * reads is the least that works. Each file lands as PATH/NAME.partial and is renamed, so
 * PATH/NAME is always whole; PATH/.done is written when every file is there.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DISK_DIR "/disk"

static void on_stop(int sig) { (void)sig; _exit(0); }

static int copy_file(const char *src, const char *dir, const char *name) {
  char tmp[4096], dst[4096];
  if (snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst) return -1;
  if (snprintf(tmp, sizeof tmp, "%s.partial", dst) >= (int)sizeof tmp) return -1;
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) { fprintf(stderr, "container-disk: open %s: %s\n", src, strerror(errno)); return -1; }
  int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) { fprintf(stderr, "container-disk: create %s: %s\n", tmp, strerror(errno)); close(in); return -1; }
  static char buf[1 << 16];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0) {
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out, buf + off, (size_t)(n - off));
      if (w < 0) { fprintf(stderr, "container-disk: write %s: %s\n", tmp, strerror(errno)); close(in); close(out); return -1; }
      off += w;
    }
  }
  close(in);
  if (n < 0 || fsync(out) < 0 || close(out) < 0 || rename(tmp, dst) < 0) {
    fprintf(stderr, "container-disk: %s: %s\n", dst, strerror(errno));
    return -1;
  }
  return 0;
}

static int copy_disk(const char *dir) {
  if (mkdir(dir, 0755) < 0 && errno != EEXIST) { fprintf(stderr, "container-disk: mkdir %s: %s\n", dir, strerror(errno)); return -1; }
  DIR *d = opendir(DISK_DIR);
  if (!d) { fprintf(stderr, "container-disk: %s: %s (a containerDisk image keeps its disk there)\n", DISK_DIR, strerror(errno)); return -1; }
  int copied = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char src[4096];
    struct stat st;
    if (e->d_name[0] == '.') continue;
    if (snprintf(src, sizeof src, "%s/%s", DISK_DIR, e->d_name) >= (int)sizeof src) continue;
    if (stat(src, &st) < 0 || !S_ISREG(st.st_mode)) continue;
    if (copy_file(src, dir, e->d_name) < 0) { closedir(d); return -1; }
    copied++;
  }
  closedir(d);
  if (copied == 0) { fprintf(stderr, "container-disk: no file under %s\n", DISK_DIR); return -1; }
  char done[4096];
  snprintf(done, sizeof done, "%s/.done", dir);
  int fd = open(done, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--no-op") == 0) return 0;
  if (argc != 3 || strcmp(argv[1], "--copy-path") != 0) {
    fputs("usage: container-disk --no-op | --copy-path PATH\n", stderr);
    return 2;
  }
  struct sigaction stop = { .sa_handler = on_stop };
  sigaction(SIGTERM, &stop, NULL);
  sigaction(SIGINT, &stop, NULL);
  if (copy_disk(argv[2]) < 0) return 1;
  for (;;) pause();
}
