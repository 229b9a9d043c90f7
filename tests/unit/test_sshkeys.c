/* test_sshkeys.c - OpenSSH public key checks: types, blobs, comments, lists and their errors */
#include "tap.h"

#include "common/sshkeys.h"

static const char ED25519[] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB/SzkoTB8FHKskNua1FL11ofTi4WWGEpuOOfrs+mQd/ root@vm";
static const char RSA[] = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQD1yn4mEwgagscKbJoP0VqFrZESANNhwk34QJGq7jveqwNh6pflfaJYGJ+R9XT7Inwk614QFYmoefgNJi26NQqg5lrXB6bzDBSsY/SaLl1D6hOer3ChnBQANJXUTPsuNm6I1ddpTjQbLNZd57A+7WY0TgTfYDypPdEl3wLFscEbepzI+pSnLIK1vKRKm77uwbUviNIg2jDcM4aZyzozchunDTcqu6fMy9JCR6BP9NLe7Xz33M9n+P+dbS/ZSH9e3mLYSJD0c0WD4DiPfFc8Sih3PKGCKQUZBt5wgzJ7PbbWGNrORkm5zccQOJP7Y3+GBICf5Ib6O1vUTeLGeK/PuqwJ root@vm";
static const char ECDSA[] = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBGtMynTmey6+b24zWn4Sn16fKW+WySEzp8sxXMguDon+TK6oOgQp+pdPWVprWHV2cSMZnmoLlJ5GbTtQRZaK2PQ= root@vm";

static int check (const char *key, struct err *e)
{
    *e = (struct err){ 0 };
    return sshkey_check (key, strlen (key), e);
}

int main (void)
{
    struct err e;
    ok (check (ED25519, &e) == 0, "an ed25519 key from ssh-keygen (%s)", e.text);
    ok (check (RSA, &e) == 0, "an RSA key (%s)", e.text);
    ok (check (ECDSA, &e) == 0, "an ECDSA key (%s)", e.text);
    char buf[1024];
    snprintf (buf, sizeof buf, "%.*s", (int)(strchr (ED25519 + 12, ' ') - ED25519), ED25519);
    ok (check (buf, &e) == 0, "a key without comment (%s)", e.text);

    ok (check ("", &e) < 0, "empty");
    ok (check ("ssh-foo AAAA", &e) < 0, "an unknown type");
    like (e.text, "not an OpenSSH public key type", "the message says so");
    ok (check ("command=\"rm -rf /\" ssh-ed25519 AAAA", &e) < 0, "options are refused");
    ok (check ("ssh-ed25519", &e) < 0, "no blob");
    like (e.text, "no base64 data", "named");
    ok (check ("ssh-ed25519 not-base64!", &e) < 0, "a blob that is not base64");
    like (e.text, "not valid base64", "named");
    /* the RSA blob under the ed25519 name */
    snprintf (buf, sizeof buf, "ssh-ed25519 %s", strchr (RSA, ' ') + 1);
    ok (check (buf, &e) < 0, "a blob of another type");
    like (e.text, "does not hold a ssh-ed25519 key", "named");
    snprintf (buf, sizeof buf, "%s", ED25519);
    buf[strlen (buf) - 3] = '\x01';
    ok (check (buf, &e) < 0, "a control character in the comment");
    ok (check ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", &e) < 0, "a truncated blob");

    char list[4096];
    snprintf (list, sizeof list, "# mine\n\n%s\r\n  %s  \n", ED25519, RSA);
    e = (struct err){ 0 };
    is_int (sshkey_check_list (list, &e), 2, "a list: comments, blank lines, CRLF, spaces");
    snprintf (list, sizeof list, "%s\nssh-rsa AAAA\n", ED25519);
    is_int (sshkey_check_list (list, &e), -1, "a bad second key");
    like (e.text, "line 2", "the line is named");
    is_int (sshkey_check_list ("\n# nothing\n", &e), -1, "no key at all");
    like (e.text, "no public key", "said");
    return done_testing ();
}
