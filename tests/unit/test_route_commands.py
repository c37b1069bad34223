"""``pipeline rules check`` and ``pipeline rules test`` as a lead runs them."""

from pipeline.cli import main


def test_check_accepts_the_shipped_file(capsys):
    assert main(["rules", "check", "config/routing.yaml"]) == 0
    assert "OK" in capsys.readouterr().out


def test_check_warns_about_thin_categories_and_misplaced_examples(tmp_path, capsys):
    rules = tmp_path / "routing.yaml"
    rules.write_text("categories:\n"
                     "  - {name: bug, examples: [\"la caisse plante\", \"l'écran reste noir\"]}\n"
                     "  - {name: refund, examples: [\"je veux être remboursé\",\n"
                     "      \"remboursez-moi la caisse qui plante\"]}\n"
                     "default: {queue: general}\n")
    assert main(["rules", "check", str(rules)]) == 0
    out = capsys.readouterr().out
    assert "warning: category bug: 2 example(s), fewer than 8" in out
    assert "classifies as" in out


def test_check_names_the_line_of_a_mistake(tmp_path, capsys):
    bad = tmp_path / "routing.yaml"
    bad.write_text("rules:\n  - name: vip\n    when: {tier: [gold]}\n    queue: VIP clients\n"
                   "default: {queue: general}\n")
    assert main(["rules", "check", str(bad)]) == 1
    assert f"{bad}:4 rules.0.queue" in capsys.readouterr().err


def test_test_explains_category_rule_queue_and_due_time(capsys):
    code = main(["rules", "test", "config/routing.yaml", "--channel", "whatsapp",
                 "--text", "Je veux être remboursé, j'ai payé deux fois : remboursement svp",
                 "--account", "acme", "--at", "2026-11-27T16:30:00+01:00"])
    out = capsys.readouterr().out
    assert code == 0
    assert "category:   refund  (confidence" in out and "remboursement" in out
    assert "keywords:   " in out and "nearest:    " in out
    assert "rule:       refunds" in out
    assert "queue:      billing" in out
    # Friday 16:30 + 4 business hours → Monday 11:30 (Paris calendar).
    assert "take in charge by: Mon 2026-11-30 11:30" in out


def test_check_with_the_linear_classifier_warns_about_an_example_of_another_category(
        tmp_path, capsys):
    rules = tmp_path / "routing.yaml"
    rules.write_text(
        "classifier: linear\n"
        "categories:\n"
        "  - name: bug\n"
        "    examples: [\"la caisse plante\", \"l'écran reste noir\", \"la caisse plante encore\",\n"
        "               \"l'imprimante plante\", \"message d'erreur\", \"la caisse se fige\",\n"
        "               \"je veux être remboursé du mois\"]\n"
        "  - name: refund\n"
        "    examples: [\"je veux être remboursé\", \"remboursez-moi l'option\",\n"
        "               \"je veux être remboursée\", \"merci de rembourser le mois\",\n"
        "               \"remboursement svp\", \"je demande un remboursement\"]\n"
        "default: {queue: general}\n")
    assert main(["rules", "check", str(rules)]) == 0
    out = capsys.readouterr().out
    assert "example «je veux être remboursé du mois» classifies as refund" in out


def test_test_shows_the_linear_classifiers_confidence_and_nearest_labelled_messages(capsys):
    code = main(["rules", "test", "config/routing.yaml", "--channel", "chat",
                 "--text", "Quand je clique sur Enregistrer, rien ne se passe"])
    out = capsys.readouterr().out
    assert code == 0
    assert "category:   bug  (confidence " in out
    assert "keywords:   rien ne se passe" in out  # the keyword that made it sure
    assert out.count("nearest:    ") == 3 and " bug " in out
