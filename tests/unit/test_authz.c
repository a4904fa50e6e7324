/* test_authz.c - who may see and do what (authz.c), the policy lines it
 * reads (accounts' coordinators, tenants, privacy), and the audit trail
 * the state keeps (adb.c). */
#include <stdio.h>
#include <string.h>

#include "../../daemon/authz.h"
#include "../../daemon/raft/adb.h"
#include "../../daemon/raft/codec.h"
#include "test.h"

static const char policy[] = "account lab 10 users=alice,bob coordinators=carol\n"
                             "account lab/vision 5 users=vic\n"
                             "account acme 10 users=dave,erin\n"
                             "account acme/train 1\n"
                             "tenant acme accounts=acme admins=erin\n";

static authz_who who(const char *user, authz_role role)
{
    authz_who w;
    memset(&w, 0, sizeof w);
    snprintf(w.user, sizeof w.user, "%s", user);
    w.role = role;
    w.uid = 1000;
    return w;
}

TEST(authz_roles_and_accounts_decide_what_is_seen)
{
    pol p;
    char err[256];
    pol_init(&p);
    REQUIRE(pol_parse(&p, "t", policy, strlen(policy), err, sizeof err) == 0);
    authz_who alice = who("alice", AUTHZ_TENANT_ADMIN), carol = who("carol", AUTHZ_TENANT_ADMIN);
    authz_who erin = who("erin", AUTHZ_TENANT_ADMIN), root = who("root", AUTHZ_ADMIN);
    authz_who vic = who("vic", AUTHZ_RESEARCHER), stranger = who("zed", AUTHZ_TENANT_ADMIN);
    /* Own jobs in full; teammates' briefly; other tenants' not at all. */
    CHECK_EQ_INT(authz_job(&p, &alice, "alice", "lab"), AUTHZ_FULL);
    CHECK_EQ_INT(authz_job(&p, &alice, "bob", "lab"), AUTHZ_BRIEF);
    CHECK_EQ_INT(authz_job(&p, &alice, "bob", "lab/vision"), AUTHZ_BRIEF); /* the institute's member */
    CHECK_EQ_INT(authz_job(&p, &vic, "alice", "lab"), AUTHZ_NONE);         /* a project's member only */
    CHECK_EQ_INT(authz_job(&p, &alice, "dave", "acme"), AUTHZ_NONE);
    /* A coordinator manages the account and its projects. */
    CHECK_EQ_INT(authz_job(&p, &carol, "bob", "lab"), AUTHZ_FULL);
    CHECK_EQ_INT(authz_job(&p, &carol, "vic", "lab/vision"), AUTHZ_FULL);
    CHECK_EQ_INT(authz_job(&p, &carol, "dave", "acme"), AUTHZ_NONE);
    /* ...but not when their credentials say researcher. */
    authz_who carol_r = who("carol", AUTHZ_RESEARCHER);
    CHECK_EQ_INT(authz_job(&p, &carol_r, "bob", "lab"), AUTHZ_NONE);
    /* A tenant admin: everything of the startup's accounts. */
    CHECK_EQ_INT(authz_job(&p, &erin, "dave", "acme/train"), AUTHZ_FULL);
    CHECK(authz_account_admin(&p, &erin, "acme"));
    CHECK(!authz_account_admin(&p, &erin, "lab"));
    CHECK(!authz_account_admin(&p, &carol, "lab")); /* coordinators do not reserve */
    authz_who erin_c = who("erin", AUTHZ_COORDINATOR);
    CHECK_EQ_INT(authz_job(&p, &erin_c, "dave", "acme"), AUTHZ_BRIEF); /* a member still */
    CHECK_EQ_INT(authz_job(&p, &root, "dave", "acme"), AUTHZ_FULL);
    CHECK_EQ_INT(authz_job(&p, &stranger, "dave", "acme"), AUTHZ_NONE);
    CHECK(!authz_account_sees(&p, &stranger, "lab"));
    CHECK(authz_account_sees(&p, &vic, "lab/vision"));
    /* Root on a node, relayed by its daemon, owns nothing: not root's jobs. */
    authz_who node_root = who("root", AUTHZ_TENANT_ADMIN);
    node_root.via_node = true;
    node_root.uid = 0;
    CHECK_EQ_INT(authz_job(&p, &node_root, "root", "default"), AUTHZ_NONE);
    CHECK_EQ_INT(authz_job(&p, &node_root, "alice", "lab"), AUTHZ_NONE);
    CHECK(!authz_account_sees(&p, &node_root, "lab"));
    authz_who node_alice = who("alice", AUTHZ_TENANT_ADMIN);
    node_alice.via_node = true;
    CHECK_EQ_INT(authz_job(&p, &node_alice, "alice", "lab"), AUTHZ_FULL); /* a node's people: theirs */
    /* privacy open: everyone sees briefly, acts on nothing of others'. */
    p.open = true;
    CHECK_EQ_INT(authz_job(&p, &stranger, "dave", "acme"), AUTHZ_BRIEF);
    CHECK(authz_account_sees(&p, &stranger, "lab"));
    pol_free(&p);
    CHECK_EQ_INT(authz_role_parse("tenant-admin"), AUTHZ_TENANT_ADMIN);
    CHECK_EQ_INT(authz_role_parse("root"), -1);
    CHECK_EQ_STR(authz_role_name(AUTHZ_COORDINATOR), "coordinator");
}

TEST(policy_tenants_coordinators_and_privacy_lines_are_checked)
{
    static const char *const bad[] = {
        "account a 1 coordinators=\n",
        "account a 1 coordinators=x coordinators=y\n",
        "account a 1\naccount a/b 1\naccount a/b/c 1 coordinators=x\n", /* not on a user's row */
        "account b 1\ntenant t accounts=a admins=x\n",                  /* a is not listed */
        "account a 1\ntenant t accounts=a\n",
        "account a 1\ntenant t accounts=a admins=x\ntenant t accounts=a admins=y\n",
        "account a 1\ntenant t accounts=a admins=x extra=1\n",
        "privacy sometimes\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pol p;
        char err[256] = "";
        pol_init(&p);
        if (pol_parse(&p, "t", bad[i], strlen(bad[i]), err, sizeof err) == 0)
            test_fail(__FILE__, __LINE__, "accepted: %s", bad[i]);
        else
            CHECK(strncmp(err, "t:", 2) == 0);
        pol_free(&p);
    }
    pol p;
    char err[256];
    pol_init(&p);
    const char *ok = "account a 1 users=u coordinators=c,d\naccount a/b 1\ntenant t accounts=a/b admins=x\n"
                     "privacy open\n";
    REQUIRE(pol_parse(&p, "t", ok, strlen(ok), err, sizeof err) == 0);
    CHECK(p.open);
    CHECK(pol_account_coordinator(&p, "a/b", "d"));
    CHECK(!pol_account_coordinator(&p, "a", "x"));
    CHECK(pol_tenant_admin(&p, "a/b", "x"));
    CHECK(!pol_tenant_admin(&p, "a", "x")); /* the tenant holds a project, not the institute */
    CHECK(pol_account_member(&p, "a/b", "u"));
    CHECK(!pol_account_member(&p, "a/b", "c"));
    pol_free(&p);
}

TEST(adb_keeps_a_bounded_numbered_trail_through_snapshots)
{
    adb a;
    adb_init(&a);
    Jazari__AuditRecord r = JAZARI__AUDIT_RECORD__INIT;
    char what[1000];
    memset(what, 'x', sizeof what - 1);
    what[sizeof what - 1] = '\0';
    r.user = "alice";
    r.role = "researcher";
    r.from = "c1 (socket)";
    r.what = what; /* cut to ADB_WHAT_MAX */
    for (int i = 0; i < ADB_MAX + 5; i++)
        adb_add(&a, &r, 1000 + i, "job 1");
    CHECK_EQ_INT(a.ring.n, ADB_MAX);
    Jazari__AuditRecord *first = adb_get(&a, 0);
    REQUIRE(first);
    CHECK_EQ_INT(first->seq, 6); /* the five oldest rolled off */
    CHECK_EQ_INT(first->at_ms, 1005);
    CHECK_EQ_INT(strlen(first->what), ADB_WHAT_MAX);
    jazari__audit_record__free_unpacked(first, NULL);
    /* Through a snapshot: the same records, numbering goes on. */
    buf out = BUF_INIT;
    adb_snapshot(&a, &out);
    Jazari__Snapshot *s = jazari__snapshot__unpack(NULL, out.len, (const uint8_t *)out.data);
    REQUIRE(s);
    adb b;
    adb_init(&b);
    adb_restore(&b, s);
    CHECK_EQ_INT(b.ring.n, ADB_MAX);
    adb_add(&b, &r, 9999, "done");
    Jazari__AuditRecord *last = adb_get(&b, b.ring.n - 1);
    REQUIRE(last);
    CHECK_EQ_INT(last->seq, ADB_MAX + 6);
    CHECK_EQ_STR(last->result, "done");
    jazari__audit_record__free_unpacked(last, NULL);
    jazari__snapshot__free_unpacked(s, NULL);
    buf_free(&out);
    adb_free(&a);
    adb_free(&b);
}
