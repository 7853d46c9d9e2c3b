//! The toy pair through every command, in process, with a real state file: what each step
//! did is read from the toy vendor's world, never from output.

use chrono::{Duration, Utc};
use clap::Parser;

use super::{world, ToyProfile};
use crate::cli::Cli;
use crate::context::Env;

struct Rehearsal {
    dir: tempfile::TempDir,
    store: String,
}

impl Rehearsal {
    fn new(name: &str) -> Rehearsal {
        let store = format!("{name}-{}", std::process::id());
        let mut w = world(&store);
        for (id, name, active) in [
            (1, "billing", true),
            (2, "reports", true),
            (3, "attic", false),
        ] {
            w.profiles.push(ToyProfile {
                id,
                name: name.into(),
                active,
                old_credential: format!("old-{id}"),
            });
        }
        Rehearsal {
            dir: tempfile::tempdir().unwrap(),
            store,
        }
    }

    /// One command line through the real entry point; its exit code.
    async fn keyshift(&self, args: &[&str]) -> i32 {
        let state = self.dir.path().join("ks.db");
        let mut argv: Vec<String> = vec!["keyshift".into()];
        argv.extend(args.iter().map(|a| a.to_string()));
        argv.extend(["--state".into(), state.display().to_string(), "-q".into()]);
        let cli = Cli::try_parse_from(argv).unwrap();
        let env = Env::from_pairs([("KEYSHIFT_TOY_STORE".to_string(), self.store.clone())]);
        crate::run(cli, env).await.code()
    }

    /// The key keyshift created for a profile, by its marker.
    fn key_of(&self, profile: i64) -> Option<super::ToyKey> {
        let marker = super::profile_marker(&profile.to_string());
        world(&self.store)
            .keys
            .iter()
            .find(|k| k.body["marker"] == marker.as_str())
            .cloned()
    }

    fn active_profiles(&self) -> Vec<i64> {
        let w = world(&self.store);
        w.profiles
            .iter()
            .filter(|p| p.active)
            .map(|p| p.id)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_pair_runs_every_command_from_its_folder_and_one_table_entry() {
    let r = Rehearsal::new("every-command");

    assert_eq!(
        r.keyshift(&["export", "--mapping", "toy-profiles-to-keys"])
            .await,
        0
    );
    assert_eq!(r.keyshift(&["plan"]).await, 0);
    assert!(world(&r.store).keys.is_empty(), "the plan writes nothing");

    assert_eq!(r.keyshift(&["apply", "--yes"]).await, 0);
    let keys = world(&r.store).keys.clone();
    assert_eq!(keys.len(), 3, "{keys:?}");
    for (profile, name, active) in [
        (1, "billing (new)", true),
        (2, "reports (new)", true),
        (3, "attic (new)", false),
    ] {
        let k = r.key_of(profile).expect("created");
        assert_eq!(k.body["name"], name);
        assert_eq!(k.active(), active, "{name}");
        assert_eq!(
            k.body["scope"], "read",
            "the pair's own [toy] section reached the body"
        );
    }
    assert_eq!(r.keyshift(&["apply", "--yes"]).await, 0);
    assert_eq!(
        world(&r.store).keys.len(),
        3,
        "a second apply creates nothing"
    );

    assert_eq!(r.keyshift(&["verify", "--live"]).await, 0);

    // billing moved to its new key; reports still uses its old credential.
    let an_hour_ago = Utc::now() - Duration::hours(1);
    let billing_key = r.key_of(1).unwrap().id;
    {
        let mut w = world(&r.store);
        assert!(w.call(&billing_key, an_hour_ago));
        assert!(w.call("old-2", an_hour_ago));
    }
    assert_eq!(r.keyshift(&["adoption"]).await, 0);

    // The default wave takes the consumer that moved and verified, and nobody else.
    assert_eq!(r.keyshift(&["cutover", "--yes"]).await, 0);
    assert_eq!(r.active_profiles(), vec![2]);
    assert!(
        !world(&r.store).call("old-1", Utc::now()),
        "billing's old credential is off"
    );
    assert!(world(&r.store).call(&billing_key, Utc::now()));

    // Give reports its wave without evidence, then undo it alone.
    assert_eq!(
        r.keyshift(&["cutover", "--yes", "--without-evidence", "--profile", "2"])
            .await,
        0
    );
    assert!(r.active_profiles().is_empty());
    assert_eq!(
        r.keyshift(&["cutover", "--undo", "--yes", "--consumer", "2"])
            .await,
        0
    );
    assert_eq!(r.active_profiles(), vec![2]);

    // Rollback: the profile cutover disabled is back, the created keys are gone.
    assert_eq!(r.keyshift(&["rollback", "--yes"]).await, 0);
    assert_eq!(
        r.active_profiles(),
        vec![1, 2],
        "attic was off before keyshift came"
    );
    assert!(
        world(&r.store).keys.is_empty(),
        "{:?}",
        world(&r.store).keys
    );
    assert_eq!(
        r.keyshift(&["rollback", "--yes"]).await,
        0,
        "a second rollback is a no-op"
    );
    assert_eq!(r.active_profiles(), vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pairs_own_section_is_checked_at_load() {
    let r = Rehearsal::new("own-section");
    let bad = r.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[pair]\nsource = \"toy-profiles\"\ntarget = \"toy-keys\"\n[toy]\nname = \"{nope}\"\nscope = \"admin\"\n",
    )
    .unwrap();
    let err = crate::registry::load_mapping(bad.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("key toy.name: unknown placeholder {nope}"),
        "{err}"
    );
    assert!(err.contains("key toy.scope: \"admin\""), "{err}");
    // Another pair's section is named as such.
    let text = crate::registry::load_mapping("toy-profiles-to-keys")
        .unwrap()
        .text
        + "\n[bifrost]\n";
    let err = crate::registry::parse_mapping("t.toml", &text)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("key bifrost: only for a bifrost-virtual-keys target"),
        "{err}"
    );
    assert_eq!(
        r.keyshift(&["export", "--mapping", bad.to_str().unwrap()])
            .await,
        1
    );
}
