/** Injection token of the topic and group {@link Names} (see orders.ts). */
export const NAMES = Symbol('NAMES');
