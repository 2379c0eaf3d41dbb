/* test_pin.c: hsm_pin_read (DESIGN §3): only a regular 0600-style file is
 * accepted; group/world access is PERMISSION_DENIED naming chmod 600;
 * symlinks, FIFOs, directories and empty or oversized files are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hsm.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	memcpy(dir, "/tmp/kh-pin.XXXXXX", 19);
	if (mkdtemp(dir) == NULL)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Writes len bytes of data to dir/name with mode and returns the path. */
static const char *pin_file(const char *name, const void *data, size_t len, mode_t mode)
{
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_true(write(fd, data, len) == (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
	return path;
}

static void read_ok(const char *p, const char *want, size_t want_len)
{
	struct kh_errbuf e = { 0 };
	char *pin = NULL;
	size_t len = 0;

	if (hsm_pin_read(p, geteuid(), &pin, &len, &e) != KH_OK)
		fail_msg("%s refused: %s", p, e.msg);
	assert_non_null(pin);
	assert_true(len == want_len);
	assert_memory_equal(pin, want, want_len);
	assert_int_equal(pin[len], '\0');
	hsm_pin_free(pin, len);
}

static void read_bad(const char *p, enum kh_err code, const char *want)
{
	struct kh_errbuf e = { 0 };
	char *pin = (char *)(uintptr_t)0x1;
	size_t len = 77;

	assert_int_equal(hsm_pin_read(p, geteuid(), &pin, &len, &e), code);
	assert_int_equal(e.code, code);
	if (want != NULL && strstr(e.msg, want) == NULL)
		fail_msg("message '%s' does not mention '%s'", e.msg, want);
	/* Out-params untouched on error. */
	assert_true(pin == (char *)(uintptr_t)0x1);
	assert_true(len == 77);
}

static void test_mode_0600(void **state)
{
	(void)state;
	read_ok(pin_file("pin", "123456", 6, 0600), "123456", 6);
	read_ok(pin_file("pin", "123456", 6, 0400), "123456", 6);
	read_ok(pin_file("pin", "123456", 6, 0700), "123456", 6);
}

static void test_trailing_newline(void **state)
{
	(void)state;
	read_ok(pin_file("pin", "abc\n", 4, 0600), "abc", 3);
	read_ok(pin_file("pin", "abc\r\n", 5, 0600), "abc", 3);
	read_ok(pin_file("pin", "abc\n\n", 5, 0600), "abc", 3);
	/* Only trailing newlines go: inner and leading bytes are the PIN. */
	read_ok(pin_file("pin", " a b\nc\n", 7, 0600), " a b\nc", 6);
}

static void test_group_world_refused(void **state)
{
	static const mode_t modes[] = { 0640, 0604, 0644, 0660, 0606, 0666, 0610, 0601, 0620, 0602, 0777 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		read_bad(pin_file("pin", "123456", 6, modes[i]), KH_E_PERMISSION_DENIED, "chmod 600");
	/* The message names the file and its mode. */
	read_bad(pin_file("loose", "123456", 6, 0644), KH_E_PERMISSION_DENIED, "0644");
	read_bad(pin_file("loose", "123456", 6, 0644), KH_E_PERMISSION_DENIED, "/loose");
}

static void test_empty(void **state)
{
	(void)state;
	read_bad(pin_file("pin", "", 0, 0600), KH_E_INVALID_ARGUMENT, "empty");
	read_bad(pin_file("pin", "\n", 1, 0600), KH_E_INVALID_ARGUMENT, "empty");
	read_bad(pin_file("pin", "\r\n\n", 3, 0600), KH_E_INVALID_ARGUMENT, "empty");
}

static void test_size(void **state)
{
	char big[258];

	(void)state;
	memset(big, '7', sizeof(big));
	read_ok(pin_file("pin", big, 256, 0600), big, 256);
	big[256] = '\n'; /* 256 + newline is 257 bytes on disk: too long */
	read_bad(pin_file("pin", big, 257, 0600), KH_E_INVALID_ARGUMENT, "longer");
	read_bad(pin_file("pin", big, 258, 0600), KH_E_INVALID_ARGUMENT, "longer");
}

static void test_symlink_refused(void **state)
{
	char target[128], link[128];

	(void)state;
	snprintf(target, sizeof(target), "%s", pin_file("target", "123456", 6, 0600));
	snprintf(link, sizeof(link), "%s/link", dir);
	unlink(link);
	assert_int_equal(symlink(target, link), 0);
	read_ok(target, "123456", 6); /* the target itself is fine */
	read_bad(link, KH_E_FAILED_PRECONDITION, link);
}

/* No component of the path may be a link (issue 13, item 13): whoever
 * can change a linked directory would choose the PIN file. */
static void test_symlinked_parent_refused(void **state)
{
	char real[128], link[128], via[160], dotted[192];

	(void)state;
	snprintf(real, sizeof(real), "%s/real", dir);
	snprintf(link, sizeof(link), "%s/linked", dir);
	mkdir(real, 0700);
	unlink(link);
	assert_int_equal(symlink(real, link), 0);
	pin_file("real/pin", "123456", 6, 0600);
	read_ok(path, "123456", 6);
	snprintf(via, sizeof(via), "%s/pin", link);
	read_bad(via, KH_E_FAILED_PRECONDITION, "symbolic link");
	read_bad(via, KH_E_FAILED_PRECONDITION, "'linked'");
	/* Extra slashes and dots do not hide it; a real path with them passes. */
	snprintf(dotted, sizeof(dotted), "%s//./linked/./pin", dir);
	read_bad(dotted, KH_E_FAILED_PRECONDITION, "symbolic link");
	snprintf(dotted, sizeof(dotted), "%s//./real/./pin", dir);
	read_ok(dotted, "123456", 6);
}

/* The owner must be root, this process's user or the service's user:
 * another user could rewrite the PIN (issue 13, item 13). */
static void test_owner(void **state)
{
	struct kh_errbuf e = { 0 };
	char *pin = NULL;
	size_t len = 0;
	const char *p;

	(void)state;
	if (geteuid() != 0)
		skip(); /* chown to another uid needs root (CI runs as root) */
	p = pin_file("owned", "123456", 6, 0600);
	assert_int_equal(chown(p, 4321, 4321), 0);
	read_bad(p, KH_E_PERMISSION_DENIED, "belongs to uid 4321");
	read_bad(p, KH_E_PERMISSION_DENIED, "chown root");
	/* The service's user may own it. */
	assert_int_equal(hsm_pin_read(p, 4321, &pin, &len, &e), KH_OK);
	hsm_pin_free(pin, len);
	/* Another uid than that still may not. */
	assert_int_equal(hsm_pin_read(p, 4322, &pin, &len, &e), KH_E_PERMISSION_DENIED);
}

static void test_not_regular(void **state)
{
	char fifo[128];

	(void)state;
	read_bad(dir, KH_E_FAILED_PRECONDITION, "regular");
	read_bad("/dev/null", KH_E_FAILED_PRECONDITION, "regular");
	/* A FIFO must be refused, not waited on for a writer: if open()
	 * blocks, the alarm ends the test as a failure. */
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	alarm(20);
	read_bad(fifo, KH_E_FAILED_PRECONDITION, "regular");
	alarm(0);
}

static void test_missing(void **state)
{
	char p[128];

	(void)state;
	snprintf(p, sizeof(p), "%s/does-not-exist", dir);
	read_bad(p, KH_E_FAILED_PRECONDITION, "does-not-exist");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode_0600),
		cmocka_unit_test(test_trailing_newline),
		cmocka_unit_test(test_group_world_refused),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_symlink_refused),
		cmocka_unit_test(test_symlinked_parent_refused),
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_not_regular),
		cmocka_unit_test(test_missing),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
