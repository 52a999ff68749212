import React from "react";
import { Button } from "./button";

interface Props {
  label: string;
}

export function Toolbar({ label }: Props) {
  return <div className="toolbar"><Button text={label} /></div>;
}

export const Footer = () => <footer>{formatYear(2024)}</footer>;
