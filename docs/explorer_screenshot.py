"""A PNG of an explorer page (translate --explore), for the README, from headless Chromium.

    python -m tinynmt.translate --checkpoint runs/strong --beam 5 --nbest 3 \\
        --explore page.html "Ein Hund rennt durch den Schnee."
    python docs/explorer_screenshot.py page.html docs/explorer-strong.png --kind cross --layer 3 --head 2 --token 3

Needs selenium and Debian's chromium + chromium-driver (as tests/test_explorer.py); nothing is
downloaded. --token pins that source position (0 is <sos>) so its weights are listed.
"""
import argparse
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--kind", choices=["encoder", "decoder", "cross"], default="cross")
    parser.add_argument("--layer", type=int, default=1, help="from 1")
    parser.add_argument("--head", type=int, default=None, help="from 1 (default: all heads)")
    parser.add_argument("--token", type=int, default=None, help="source position to pin")
    parser.add_argument("--size", default="1400,1000", help="window width,height in pixels")
    args = parser.parse_args()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={args.size}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        driver.get(args.page.resolve().as_uri())
        driver.find_element(By.CSS_SELECTOR, f"input[name=kind][value={args.kind}]").click()
        Select(driver.find_element(By.ID, "layer")).select_by_value(str(args.layer - 1))
        if args.head is not None:
            driver.find_element(By.ID, "heads-none").click()
            driver.find_element(By.ID, f"head-{args.head - 1}").click()
        if args.token is not None:
            driver.find_element(By.CSS_SELECTOR, f"#src-tokens .token[data-index='{args.token}']").click()
        driver.save_screenshot(str(args.png))
    finally:
        driver.quit()
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
