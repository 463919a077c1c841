// Sign up and log in.

import { api } from "../api.js";
import { busy, field, h } from "../dom.js";
import { t } from "../i18n.js";

export function authView(root, mode, onSignedIn) {
  const register = mode === "register";
  const username = h("input", { name: "username", required: true, autocomplete: "username", minlength: "3",
    maxlength: "32", pattern: "[A-Za-z0-9_]{3,32}", autocapitalize: "off" });
  const password = h("input", { name: "password", type: "password", required: true, minlength: register ? "8" : "1",
    autocomplete: register ? "new-password" : "current-password" });
  const displayName = h("input", { name: "display_name", maxlength: "32" });
  const role = h("select", { name: "role" }, h("option", { value: "user" }, t("auth.role.user")),
    h("option", { value: "merchant" }, t("auth.role.merchant")));
  const submit = h("button.primary", { type: "submit" }, register ? t("auth.register") : t("auth.login"));
  const errorEl = h("p.error", { role: "alert", hidden: true });
  const form = h(`form.stack.auth-form.${mode}`, {},
    field(t("auth.username"), username), field(t("auth.password"), password),
    register ? field(t("auth.display_name"), displayName) : null,
    register ? field(t("auth.role"), role) : null,
    errorEl, submit,
    h("a.switch-mode", { href: register ? "#/login" : "#/register" },
      register ? t("auth.have_account") : t("auth.no_account")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    errorEl.hidden = true;
    const body = { username: username.value.trim(), password: password.value };
    if (register) {
      body.role = role.value;
      if (displayName.value.trim()) body.display_name = displayName.value.trim();
    }
    try {
      const res = await busy(submit, api.publicPost(register ? "/v1/auth/register" : "/v1/auth/login", body));
      onSignedIn(res.user, res.token);
    } catch (err) {
      errorEl.hidden = false;
      errorEl.textContent = err.words;
    }
  });
  root.append(h("div.page.auth", {},
    h("div.hero", {}, h("h1", {}, t("app.name")), h("p.muted", {}, t("auth.welcome"))),
    h("section.card", {}, h("h2", {}, register ? t("auth.register") : t("auth.login")), form)));
}
