// Package shops is the registry of the shops one deployment serves: for each
// shop its id (the <shop> token of the subjects), its WeChat Channels account,
// its vv-tool account, its own API token and its share of the shipper.
//
// A deployment with SHOPS_FILE reads the registry from that YAML file (Load,
// Parse, Watcher); one without it has a single shop, DefaultID, built from the
// WECHAT_*/VVTOOL_* variables (Single), so existing setups keep working.
//
// # Secrets by reference
//
// The file names where each secret is, never the secret itself: secret_env
// names an environment variable, secret_file a file (every *_env key has a
// *_file twin), and an inline secret key is refused. The file is meant to be
// a plain ConfigMap, checked into a repository, diffed in reviews and printed
// in logs, while the secrets stay in a Kubernetes Secret or a compose secret
// with their own access control and rotation. A relative *_file path is taken
// from the shops file's folder (Load, Watcher). Both kinds of value lose their
// surrounding white space (a trailing newline of a mounted file, say) and must
// be one line.
//
// No error or log line of this package holds a secret's value: they name the
// variable or the file instead. A *_env value must look like a variable name
// (A-Z, 0-9 and _, not starting with a digit) so that a secret pasted there by
// mistake is refused without being repeated in the error.
//
// # Validation
//
// Parse refuses a file on its first problem with one line that names the line
// and column, the field and the shop, e.g.
//
//	shops file line 7, column 19: shops[1].channels.secret_env (shop acme): ACME_WECHAT_SECRET is not set (or is empty)
//
// Unknown keys are refused (a misspelt optional key would otherwise be
// silently ignored), and so is one appid in two shops: a token cache and its
// single-flight are per appid, so two shops on one appid would be one account
// fed by two pollers.
//
// # Reloads
//
// A Watcher re-reads the file on a reload signal (SIGHUP) and when it or a
// secret file it references changed (by content, so a Kubernetes ConfigMap's
// symlink swap is seen). A file that is refused is logged, once per distinct
// error, and changes nothing: the last good registry stays current, so a typo
// in a live edit never takes a running deployment's shops away. A Registry
// is immutable; a reload builds a new one and hands it out whole.
package shops
