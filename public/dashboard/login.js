// The development sign-in: the worker sets an HttpOnly session cookie for the email.
const form = document.getElementById("login");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("error");
  error.textContent = "";
  const response = await fetch("/dashboard/api/dev-login", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Dashboard-Request": "1" },
    body: JSON.stringify({ email: form.email.value }),
  });
  if (response.ok) {
    location.assign("/dashboard/");
  } else {
    const problem = await response.json().catch(() => ({}));
    error.textContent = problem.detail ?? `Sign-in failed (HTTP ${response.status}).`;
  }
});
