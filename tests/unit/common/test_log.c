/* test_log.c: kh_log writes to the journal only when stderr IS the
 * journal's stream (JOURNAL_STREAM's DEV:INODE against fstat of fd 2,
 * sd-daemon(3)); with the variable inherited but stderr elsewhere, the
 * lines must still reach stderr. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "kh_log.h"

static void test_parse(void **state)
{
	(void)state;
	assert_true(kh_log_journal_stream_is("8:1234", 8, 1234));
	assert_true(kh_log_journal_stream_is("0:0", 0, 0));
	assert_false(kh_log_journal_stream_is("8:1234", 8, 1235));
	assert_false(kh_log_journal_stream_is("8:1234", 9, 1234));
	assert_false(kh_log_journal_stream_is(NULL, 8, 1234));
	assert_false(kh_log_journal_stream_is("", 8, 1234));
	assert_false(kh_log_journal_stream_is("8", 8, 1234));
	assert_false(kh_log_journal_stream_is("8:", 8, 1234));
	assert_false(kh_log_journal_stream_is(":1234", 8, 1234));
	assert_false(kh_log_journal_stream_is("8:1234x", 8, 1234));
	assert_false(kh_log_journal_stream_is("8:1234:5", 8, 1234));
	assert_false(kh_log_journal_stream_is("-8:1234", 8, 1234));
	assert_false(kh_log_journal_stream_is("8:-1234", 8, 1234));
	assert_false(kh_log_journal_stream_is(" 8:1234", 8, 1234));
}

/* Runs one message in a child (kh_log decides its sink once) with fd 2 a
 * fresh file and JOURNAL_STREAM = env, or that file's own DEV:INODE when
 * env is NULL; returns what reached the file. */
static char *run_child(const char *env, bool *was_journal)
{
	char path[] = "/tmp/kh_test_log_XXXXXX";
	int fd = mkstemp(path), st = 0;
	static char out[4096];
	pid_t pid;
	ssize_t n;

	assert_true(fd >= 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct stat sb;
		char v[64];

		if (dup2(fd, STDERR_FILENO) < 0 || fstat(STDERR_FILENO, &sb) != 0)
			_exit(2);
		if (env == NULL) {
			snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)sb.st_dev, (unsigned long long)sb.st_ino);
			env = v;
		}
		setenv("JOURNAL_STREAM", env, 1);
		log_info("hello %d", 42);
		_exit(kh_log_stderr_is_journal() ? 10 : 11);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	*was_journal = WEXITSTATUS(st) == 10;
	assert_true(WEXITSTATUS(st) == 10 || WEXITSTATUS(st) == 11);
	n = pread(fd, out, sizeof(out) - 1, 0);
	assert_true(n >= 0);
	out[n] = '\0';
	close(fd);
	unlink(path);
	return out;
}

static void test_inherited_but_redirected(void **state)
{
	bool journal = true;
	const char *out;

	(void)state;
	/* A value that names some other stream: plain lines on stderr. */
	out = run_child("1:1", &journal);
	assert_false(journal);
	assert_non_null(strstr(out, "keyholdd[info] run_child: hello 42\n"));
	out = run_child("garbage", &journal);
	assert_false(journal);
	assert_non_null(strstr(out, "hello 42"));
}

static void test_matching_stream(void **state)
{
	bool journal = false;
	const char *out;

	(void)state;
	/* fd 2 is the named stream: the journal's format, never the
	 * timestamped one (without a journald socket, sd_journal_send fails
	 * and the "<6>" line goes to the stream itself). */
	out = run_child(NULL, &journal);
	assert_true(journal);
	assert_null(strstr(out, "keyholdd[info]"));
	if (out[0] != '\0')
		assert_string_equal(out, "<6>run_child: hello 42\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_inherited_but_redirected),
		cmocka_unit_test(test_matching_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
