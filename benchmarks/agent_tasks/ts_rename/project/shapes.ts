export function areaOf(width: number, height: number): number {
  return width * height;
}
