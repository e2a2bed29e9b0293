import { lazy, Suspense, useEffect, useState } from "react";
import { NavLink, Route, Routes } from "react-router";
import { useQueryClient } from "@tanstack/react-query";
import { api } from "./api/client";
import { useMe } from "./api/hooks";
import { Login } from "./pages/Login";
import { Dashboard } from "./pages/Dashboard";

// Pages load when first opened: the first page carries only the dashboard.
const Runs = lazy(() => import("./pages/Runs").then((m) => ({ default: m.Runs })));
const Approvals = lazy(() => import("./pages/Approvals").then((m) => ({ default: m.Approvals })));
const Meetings = lazy(() => import("./pages/Meetings").then((m) => ({ default: m.Meetings })));
const Workflows = lazy(() => import("./pages/Workflows").then((m) => ({ default: m.Workflows })));
const Usage = lazy(() => import("./pages/Usage").then((m) => ({ default: m.Usage })));
const Admin = lazy(() => import("./pages/Admin").then((m) => ({ default: m.Admin })));
const Governance = lazy(() => import("./pages/Governance").then((m) => ({ default: m.Governance })));
const Hiring = lazy(() => import("./pages/Hiring").then((m) => ({ default: m.Hiring })));
const Linear = lazy(() => import("./pages/Linear").then((m) => ({ default: m.Linear })));
const OrgChart = lazy(() => import("./pages/Personas").then((m) => ({ default: m.OrgChart })));
const PersonaDetail = lazy(() => import("./pages/Personas").then((m) => ({ default: m.PersonaDetail })));
const Artifacts = lazy(() => import("./pages/Artifacts").then((m) => ({ default: m.Artifacts })));
const ArtifactDetail = lazy(() => import("./pages/Artifacts").then((m) => ({ default: m.ArtifactDetail })));
const Automation = lazy(() => import("./pages/Automation").then((m) => ({ default: m.Automation })));
const ScheduleDetail = lazy(() => import("./pages/Automation").then((m) => ({ default: m.ScheduleDetail })));
const WebhookDetail = lazy(() => import("./pages/Automation").then((m) => ({ default: m.WebhookDetail })));
const RunDetail = lazy(() => import("./pages/RunDetail").then((m) => ({ default: m.RunDetail })));

const NAV = [
  ["/", "Dashboard"],
  ["/runs", "Runs"],
  ["/approvals", "Approvals"],
  ["/meetings", "Meetings"],
  ["/workflows", "Workflows"],
  ["/automation", "Automation"],
  ["/personas", "Organization"],
  ["/hiring", "Hiring"],
  ["/artifacts", "Artifacts"],
  ["/usage", "Usage"],
  ["/governance", "Governance"],
  ["/linear", "Linear"],
  ["/admin", "Admin"],
] as const;

const THEMES = ["system", "light", "dark"] as const;
type Theme = (typeof THEMES)[number];

/** The theme: the system's unless chosen here (kept in this browser). */
function useTheme(): [Theme, () => void] {
  const [theme, setTheme] = useState<Theme>(() => {
    const saved = localStorage.getItem("vorg-theme");
    return THEMES.includes(saved as Theme) ? (saved as Theme) : "system";
  });
  useEffect(() => {
    if (theme === "system") delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
    localStorage.setItem("vorg-theme", theme);
  }, [theme]);
  const next = () => setTheme(THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length] ?? "system");
  return [theme, next];
}

export function App() {
  const [theme, nextTheme] = useTheme();
  const me = useMe();
  const qc = useQueryClient();
  if (me.isPending) return <p className="loading">Loading…</p>;
  if (!me.data) return <Login />;
  const logout = async () => {
    await api.POST("/auth/logout");
    qc.removeQueries({ predicate: (q) => q.queryKey[0] !== "me" });
    qc.setQueryData(["me"], null);
  };
  return (
    <div className="shell">
      <header>
        <span className="brand">vorg</span>
        <nav aria-label="Main">
          {NAV.map(([to, label]) => (
            <NavLink key={to} to={to} end={to === "/"}>
              {label}
            </NavLink>
          ))}
        </nav>
        <span className="who">
          {me.data.email} ({me.data.roles.join(", ")})
          <button type="button" onClick={nextTheme} aria-label={`Theme: ${theme} (change)`}>
            Theme: {theme}
          </button>
          <button type="button" onClick={logout}>
            Log out
          </button>
        </span>
      </header>
      <main>
        <Suspense fallback={<p>Loading…</p>}>
        <Routes>
          <Route path="/" element={<Dashboard me={me.data} />} />
          <Route path="/runs" element={<Runs me={me.data} />} />
          <Route path="/runs/:id" element={<RunDetail me={me.data} />} />
          <Route path="/approvals" element={<Approvals me={me.data} />} />
          <Route path="/meetings" element={<Meetings me={me.data} />} />
          <Route path="/workflows" element={<Workflows me={me.data} />} />
          <Route path="/automation" element={<Automation me={me.data} />} />
          <Route path="/automation/schedules/:id" element={<ScheduleDetail me={me.data} />} />
          <Route path="/automation/webhooks/:id" element={<WebhookDetail me={me.data} />} />
          <Route path="/personas" element={<OrgChart />} />
          <Route path="/personas/:id" element={<PersonaDetail me={me.data} />} />
          <Route path="/usage" element={<Usage />} />
          <Route path="/admin" element={<Admin me={me.data} />} />
          <Route path="/governance" element={<Governance me={me.data} />} />
          <Route path="/artifacts" element={<Artifacts />} />
          <Route path="/artifacts/:id" element={<ArtifactDetail />} />
          <Route path="/hiring" element={<Hiring me={me.data} />} />
          <Route path="/linear" element={<Linear me={me.data} />} />
          <Route path="*" element={<p>No such page.</p>} />
        </Routes>
        </Suspense>
      </main>
    </div>
  );
}
