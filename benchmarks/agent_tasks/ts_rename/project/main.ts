import { areaOf } from './shapes';

export const floor: number = areaOf(4, 5);
// areaOf is documented in shapes.ts
