/**
 * Vitest settings every suite shares: resolve workspace packages to their TypeScript sources (the
 * `mqkit-source` export condition), so tests never run stale builds.
 */
export const sourceConditions = ['mqkit-source', 'node', 'development|production'];

export const sharedResolve = {
  resolve: { conditions: sourceConditions },
  ssr: { resolve: { conditions: sourceConditions, externalConditions: ['mqkit-source'] } },
};
