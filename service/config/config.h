/* svc_config: keyholdd's INI configuration (DESIGN §6), parsed with inih and
 * validated; errors name the file, the line and the reason. */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kh_err.h"

enum svc_fips_mode { SVC_FIPS_OFF, SVC_FIPS_ALIGNED, SVC_FIPS_VALIDATED };

enum svc_role {
	SVC_ROLE_ADMIN = 1u << 0,
	SVC_ROLE_SIGNER = 1u << 1,
	SVC_ROLE_AUDITOR = 1u << 2,
};

enum svc_principal_kind { SVC_PK_UID, SVC_PK_GID, SVC_PK_CERT };

/* [revocation] ocsp_nonce: send a nonce (RFC 8954) and refuse a response
 * that echoes another; required also refuses one that echoes none. */
enum svc_ocsp_nonce { SVC_NONCE_OFF, SVC_NONCE_ON, SVC_NONCE_REQUIRED };

/* One "role = principal" grant from [access]. */
struct svc_grant {
	unsigned role;                  /* one enum svc_role bit */
	enum svc_principal_kind kind;
	uid_t uid;                      /* SVC_PK_UID */
	gid_t gid;                      /* SVC_PK_GID */
	char cert[256];                 /* SVC_PK_CERT: SAN URI or CN */
	char text[256];                 /* as written: "user:app", "cert:..." */
};

/* [key:NAME]: who may sign with key NAME, and how (DESIGN §9). */
struct svc_key_policy_cfg {
	char key[65];
	struct svc_grant *signers;      /* role unused */
	size_t n_signers;
	size_t n_gone;                  /* signers whose account does not exist: ignored */
	unsigned digests;               /* 1u << enum kh_digest; 0: any */
	unsigned paddings;              /* 1u << enum kh_padding; 0: any */
	int line;                       /* where the section starts */
};

/* The audit checkpoint key when [audit] key is not set. */
#define SVC_AUDIT_KEY_DEFAULT "keyhold-audit"

struct svc_config {
	char *path;
	/* [service] */
	char *socket;
	mode_t socket_mode;
	char *socket_group;             /* NULL: keep the process group */
	char *state_dir;
	unsigned workers;
	enum svc_fips_mode fips_mode;
	bool fips_allow_eddsa;
	unsigned frame_max;
	unsigned max_connections;
	unsigned max_inflight;          /* per connection */
	unsigned inline_max_us;         /* quicker methods run on the loop thread; 0: never */
	unsigned loops;                 /* event loops for Unix connections; 0: one per CPU, 1: the main loop */
	bool loop_sched_normal;         /* loop_sched = normal: the loops are SCHED_OTHER (default batch) */
	unsigned idle_timeout_s;
	int log_level;                  /* KH_LOG_* */
	/* [token] */
	char *module;
	char *uri;
	char *pin_file;
	unsigned sessions;
	unsigned lock_spin_us;          /* [token] lock_spin_us: keyholdd's mutexes in the module (0: its own) */
	/* [tls] */
	char *tls_listen;
	char *tls_key;
	char *tls_cert;
	char *tls_client_truststore;
	/* [access] */
	struct svc_grant *grants;
	size_t n_grants;
	/* ---- security (issue 5) ---- */
	char *user;                     /* [service] user: drop to it after binding */
	unsigned rate;                  /* requests/s per principal; 0: no limit */
	unsigned rate_burst;            /* bucket size; default 2 * rate */
	char *tls_client_ca;            /* [tls] client_ca: PEM CA bundle */
	unsigned tls_handshake_timeout_s;
	/* [audit] */
	char *audit_file;               /* default STATE_DIR/audit.log */
	char *audit_key;                /* token key that signs checkpoints; NULL: SVC_AUDIT_KEY_DEFAULT */
	unsigned audit_checkpoint_records;
	unsigned audit_checkpoint_interval_s;
	unsigned audit_anchor_interval_s; /* anchor_interval (0: every checkpoint) */
	bool audit_sync_always;         /* fdatasync every record */
	bool audit_tamper_refuse;       /* on_tamper = refuse (default report) */
	uint64_t audit_rotate_size;     /* rotate_size, bytes; 0: off */
	unsigned audit_rotate_age_s;    /* rotate_age; 0: off */
	unsigned audit_rotate_keep;     /* rotated files kept; 0: all */
	bool audit_journal;             /* journal = yes: a copy of every record to the log */
	/* [key:NAME] */
	struct svc_key_policy_cfg *key_policies;
	size_t n_key_policies;
	/* [revocation] (docs/REVOCATION.md) */
	unsigned rev_connect_timeout_s;
	unsigned rev_timeout_s;         /* whole transfer */
	unsigned rev_crl_max;           /* bytes of one CRL */
	unsigned rev_ocsp_max;          /* bytes of one OCSP response */
	enum svc_ocsp_nonce rev_nonce;
	char *rev_proxy;                /* NULL: no proxy (the environment is ignored) */
	unsigned rev_recheck_interval_s; /* revocation scheduler: CRL refresh and re-check of held certificates */
	/* [expiry] */
	unsigned exp_notify_days;       /* notify this many days before notAfter */
	unsigned exp_notify_every_s;    /* at most one notification per certificate per period */
	unsigned exp_check_interval_s;  /* how often the monitor runs */
	char **exp_hook;                /* argv (NULL-terminated) of the notification command; NULL: none */
	unsigned exp_hook_timeout_s;
	/* [acme] (docs/PKI.md "ACME enrollment") */
	char *acme_http01_host;         /* NULL: no http-01 responder */
	unsigned acme_http01_port;
	unsigned acme_timeout_s;        /* one enrollment, all polling included */
	/* [scep] (docs/PKI.md "SCEP enrollment"): a PENDING request is polled
	 * after poll_interval, the wait doubling up to poll_max, until
	 * poll_timeout after the first answer (then abandoned). */
	unsigned scep_poll_interval_s;
	unsigned scep_poll_max_s;
	unsigned scep_poll_timeout_s;
	/* [state] (docs/CLUSTER.md "State backend") */
	bool state_postgresql;          /* backend = postgresql (default sqlite) */
	char *state_dsn;                /* libpq connection string */
	char *state_password_file;      /* NULL: the systemd credential keyhold-db-password, if any */
	/* [metrics] (docs/OPERATIONS.md) */
	bool metrics_listen;            /* listen was given */
	char *metrics_host;             /* numeric address */
	unsigned metrics_port;          /* 0: any free port (logged) */
	bool metrics_loopback;          /* the address is a loopback one */
	bool metrics_allow_remote;      /* allow_remote = yes */
	unsigned metrics_probe_interval_s; /* token probe and certificate survey */
	/* [cluster] (docs/CLUSTER.md) */
	char *cluster_node;             /* this node's name (default: the host name) */
	unsigned cluster_lease_ttl_s;   /* 0: svc_config_lease_ttl derives it */
};

/* How long a scheduled role's lease lasts ([cluster] lease_ttl, or half
 * the shortest scheduled interval, 5-30 s): the heartbeat renews it every
 * third of that, so a dead node's roles move on at most this long after
 * its last heartbeat. */
unsigned svc_config_lease_ttl(const struct svc_config *c);

/* Parses one principal (uid:N, gid:N, user:NAME, group:NAME, cert:NAME)
 * into g (g->role untouched): user: and group: are resolved to the
 * account's numeric id now, g->text keeps the name for display. On error
 * writes the reason into err: NOT_FOUND when the syntax is right but the
 * account does not exist, INVALID_ARGUMENT otherwise. */
enum kh_err svc_principal_parse(const char *s, struct svc_grant *g, char *err, size_t errsz) KH_WUR;
/* Parses "sha256,sha384" / "pkcs1,pss" into a bit set; 0 and a reason on
 * an unknown name. */
unsigned svc_digest_set_parse(const char *s, char *err, size_t errsz);
unsigned svc_padding_set_parse(const char *s, char *err, size_t errsz);

/* Reads and validates path. On error e says "PATH:LINE: reason". */
enum kh_err svc_config_load(const char *path, struct svc_config **out, struct kh_errbuf *e) KH_WUR;
/* The same from a string; name stands for the file in messages. */
enum kh_err svc_config_parse(const char *text, const char *name, struct svc_config **out,
			     struct kh_errbuf *e) KH_WUR;
void svc_config_free(struct svc_config *c);

/* ---- reload (SIGHUP, daemon/reload.c) ---- */

/* What a reload may change while keyholdd runs: [access] roles, [key:NAME]
 * grants, [revocation], [expiry] and log_level. Returns a new live
 * configuration: old's other settings (sharing old's memory for them) with
 * fresh's reloadable ones (moved out of fresh, which the caller then frees
 * with svc_config_free). For each other setting that differs in fresh,
 * restart(arg, "[section] key") is called: it takes effect only after a
 * restart. NULL when out of memory (fresh untouched). old stays valid and
 * must outlive every reader; it is freed, once no thread can read it,
 * with svc_config_free_retired, and the last live configuration with
 * svc_config_free. */
struct svc_config *svc_config_reloaded(const struct svc_config *old, struct svc_config *fresh,
				       void (*restart)(void *arg, const char *what), void *arg);
/* Frees what a configuration replaced by svc_config_reloaded owns alone:
 * its reloadable settings. NULL ok. */
void svc_config_free_retired(struct svc_config *c);

const char *svc_fips_mode_name(enum svc_fips_mode m);

/* "30s", "15m", "12h", "7d" -> seconds in [min_s, max_s]; KH_OK, or
 * KH_E_INVALID_ARGUMENT (*out untouched). */
enum kh_err svc_config_duration(const char *s, unsigned min_s, unsigned max_s, unsigned *out) KH_WUR;
/* A size in bytes with an optional K, M or G suffix (powers of 1024): "4096", "64M". */
enum kh_err svc_config_bytes(const char *s, uint64_t *out) KH_WUR;
/* Splits a command line into argv: words separated by blanks, "double
 * quotes" group (\" and \\ inside), no shell. *argv is NULL-terminated and
 * freed with svc_config_argv_free. INVALID_ARGUMENT with a reason. */
enum kh_err svc_config_argv(const char *s, char ***argv, struct kh_errbuf *e) KH_WUR;
void svc_config_argv_free(char **argv);

#endif
