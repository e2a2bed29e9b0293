import { useQuery } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "./client";

export type Me = Schemas["Me"];

/** The caller; `null` when not logged in. */
export function useMe() {
  return useQuery({
    queryKey: ["me"],
    queryFn: async () => {
      const res = await api.GET("/auth/me");
      if (res.response.status === 401) return null;
      return unwrap(res);
    },
    staleTime: 30_000,
  });
}

export type Permission = Me["permissions"][number];

export function can(me: Me | null | undefined, permission: Permission): boolean {
  return !!me && me.permissions.includes(permission);
}
